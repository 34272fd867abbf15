/**
 * The extension in a real VS Code (code-server's workbench in headless chromium), against the real
 * `channelcoder lsp`, the real engine and Claude CLI, and the scripted model. Loaded by the
 * extension host through `extensionTestsPath`; run by tests/clients/test_vscode_e2e.py via
 * ./runner. What the user sees (notifications, the refactor preview, the palette, the status
 * bar) is read from the browser's DOM, and buttons are clicked there.
 */

import { strict as assert } from "node:assert";
import { readFileSync } from "node:fs";
import * as path from "node:path";

import * as vscode from "vscode";

import {
  clearNotifications,
  eyes,
  notification,
  notifications,
  runAll,
  scenario,
  sleep,
  test,
  waitUntil,
} from "./harness";
import { SELECTORS } from "./protocol";

const EXTENSION_ID = "channelcoder.channelcoder";
const workspace = (): string => process.env.CHANNELCODER_E2E_WORKSPACE ?? vscode.workspace.workspaceFolders?.[0]?.uri.fsPath ?? "";
const appUri = (): vscode.Uri => vscode.Uri.file(path.join(workspace(), "app.py"));

interface ExtensionApi {
  readonly serverRunning: boolean;
}

async function api(): Promise<ExtensionApi> {
  const extension = vscode.extensions.getExtension<ExtensionApi>(EXTENSION_ID);
  assert.ok(extension, `${EXTENSION_ID} is loaded`);
  return extension.isActive ? extension.exports : extension.activate();
}

async function serverReady(): Promise<void> {
  const ext = await api();
  await waitUntil("the language server to run", 60_000, () => ext.serverRunning || undefined);
  await waitUntil("the server's commands", 30_000, async () => (await vscode.commands.getCommands(true)).includes("channelcoder.run") || undefined);
}

/** Open app.py (fresh from disk) with line 1 selected. */
async function openApp(): Promise<vscode.TextEditor> {
  const document = await vscode.workspace.openTextDocument(appUri());
  const editor = await vscode.window.showTextDocument(document, { preview: false });
  editor.selection = new vscode.Selection(0, 0, 0, document.lineAt(0).text.length);
  return editor;
}

/** Run the "Improve with Claude" code action; `done` settles with the command's reply. */
async function improveSelection(editor: vscode.TextEditor): Promise<{ done: Promise<unknown> }> {
  const actions = await vscode.commands.executeCommand<vscode.CodeAction[]>(
    "vscode.executeCodeActionProvider",
    editor.document.uri,
    editor.selection,
  );
  const improve = actions.find((action) => action.title === "Improve with Claude");
  assert.ok(improve?.command, `"Improve with Claude" among the code actions: ${actions.map((a) => a.title).join(", ")}`);
  const command = improve.command;
  return { done: Promise.resolve(vscode.commands.executeCommand(command.command, ...(command.arguments ?? []))) };
}

async function previewButtons(): Promise<string[]> {
  return (await eyes({ op: "texts", selector: SELECTORS.previewButton })).texts ?? [];
}

async function waitForPreview(): Promise<string[]> {
  await waitUntil("the refactor preview's Apply button", 90_000, async () => (await previewButtons()).some((text) => text.includes("Apply")) || undefined);
  return (await eyes({ op: "texts", selector: SELECTORS.previewRow })).texts ?? [];
}

/** What a user does to accept: tick the file in the preview (edits that need confirmation start
 * unticked), then Apply. */
async function acceptInPreview(): Promise<void> {
  const ticked = await eyes({ op: "click", selector: SELECTORS.previewTopCheckbox });
  assert.ok(ticked.ok, `ticked the file in the refactor preview: ${JSON.stringify((await eyes({ op: "html", selector: SELECTORS.previewRow })).texts)}`);
  await clickPreview("Apply");
}

async function clickPreview(button: "Apply" | "Discard"): Promise<void> {
  const clicked = await eyes({ op: "click", selector: SELECTORS.previewButton, text: button });
  assert.ok(clicked.ok, `clicked the preview's ${button} (buttons: ${JSON.stringify(await previewButtons())})`);
}

function diskText(): string {
  return readFileSync(appUri().fsPath, "utf8");
}

async function documentText(): Promise<string> {
  return (await vscode.workspace.openTextDocument(appUri())).getText();
}

async function revertAndClose(): Promise<void> {
  await vscode.commands.executeCommand("workbench.action.files.revert");
  await vscode.commands.executeCommand("workbench.action.closeAllEditors");
}

test("activation: the extension starts the real server, its commands are in the palette, and no client-only setting reaches the server", 120_000, async () => {
  await serverReady();
  const palette = vscode.commands.executeCommand("workbench.action.showCommands");
  await eyes({ op: "type", text: "Claude: " });
  const rows = await waitUntil("palette rows for Claude", 15_000, async () => {
    const texts = (await eyes({ op: "texts", selector: SELECTORS.quickInputRow })).texts ?? [];
    return texts.some((text) => text.includes("Doctor")) ? texts : undefined;
  });
  await eyes({ op: "screenshot", name: "palette" });
  await eyes({ op: "key", key: "Escape" });
  await palette;
  for (const title of ["Claude: Ask…", "Claude: Run in sandbox…", "Claude: Doctor", "Claude: Show jobs", "Claude: Cancel job", "Claude: Apply pending proposal"]) {
    assert.ok(rows.some((row) => row.includes(title)), `"${title}" in the palette: ${JSON.stringify(rows)}`);
  }
  await sleep(1500);
  const shown = await notifications();
  assert.ok(!shown.some((text) => /unknown option/.test(text)), `no "unknown option" warning: ${JSON.stringify(shown)}`);
});

test("improve: Improve with Claude on a selection shows a progress notification, then the refactor preview; Apply changes the file", 180_000, async () => {
  await scenario("translate");
  await serverReady();
  await clearNotifications(vscode.commands);
  const editor = await openApp();
  const { done } = await improveSelection(editor);
  const progress = await notification(/Claude: Improve/, 30_000);
  await eyes({ op: "screenshot", name: "progress-notification" });
  assert.match(progress, /Cancel/, "the progress notification can be cancelled");
  const rows = await waitForPreview();
  await eyes({ op: "screenshot", name: "refactor-preview" });
  assert.ok(rows.some((row) => row.includes("app.py")), `the preview lists app.py: ${JSON.stringify(rows)}`);
  await acceptInPreview();
  const result = (await done) as { ok?: boolean } | undefined;
  assert.equal(result?.ok, true, JSON.stringify(result));
  await waitUntil("the buffer to say bonjour", 15_000, async () => (await documentText()).includes("bonjour") || undefined);
  await vscode.commands.executeCommand("workbench.action.files.save");
  await waitUntil("app.py on disk to say bonjour", 10_000, () => diskText().includes("bonjour") || undefined);
  await revertAndClose();
});

export async function run(): Promise<void> {
  await runAll();
}
