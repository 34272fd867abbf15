/**
 * The extension in a real VS Code (code-server's workbench in headless chromium), against the real
 * `channelcoder lsp`, the real engine and Claude CLI, and the scripted model. Loaded by the
 * extension host through `extensionTestsPath`; run by tests/clients/test_vscode_e2e.py via
 * ./runner. What the user sees (notifications, the refactor preview, the palette, the status
 * bar) is read from the browser's DOM, and buttons are clicked there.
 */

import { strict as assert } from "node:assert";
import { readdirSync, readFileSync, writeFileSync } from "node:fs";
import * as path from "node:path";

import * as vscode from "vscode";

import {
  clearNotifications,
  clickNotificationButton,
  containers,
  eyes,
  notification,
  notifications,
  runAll,
  scenario,
  sleep,
  test,
  waitUntil,
  withTimeout,
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

test("activation: the extension starts the real server, its commands are in the palette, no client-only setting reaches the server, and settings problems are one notification", 120_000, async () => {
  await serverReady();
  const installedIn = process.env.CHANNELCODER_E2E_EXTENSIONS;
  if (installedIn) {
    const where = vscode.extensions.getExtension(EXTENSION_ID)?.extensionPath ?? "";
    assert.ok(where.startsWith(installedIn), `the extension runs from the installed .vsix (${where})`);
  }
  const problems = await notification(/Claude settings/, 30_000);
  await eyes({ op: "screenshot", name: "settings-problems" });
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
  assert.ok(!shown.some((text) => /unknown (option|setting)/.test(text)), `no "unknown setting" warning: ${JSON.stringify(shown)}`);
  assert.match(problems, /2 problems — \(1\) setting 'maxTurns'.*\(2\) setting 'idleTimeout'/s);
  assert.equal(shown.filter((text) => /maxTurns|idleTimeout/.test(text)).length, 1, `said once: ${JSON.stringify(shown)}`);
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

/** Wait for the quick input (an input box) to show `prompt`, then answer it. */
async function answerInputBox(prompt: RegExp, answer: string): Promise<void> {
  await waitUntil(`an input box saying ${prompt}`, 15_000, async () => {
    const texts = (await eyes({ op: "texts", selector: SELECTORS.quickInput })).texts ?? [];
    return texts.some((text) => prompt.test(text)) || undefined;
  });
  await eyes({ op: "type", text: answer, enter: true });
}

interface Listing {
  jobs: { jobId: string; state?: string; phase?: string | null }[];
  proposals: { jobId: string }[];
}

async function jobList(): Promise<Listing> {
  return (await vscode.commands.executeCommand("channelcoder.jobs")) as Listing;
}

/** Claude itself runs (in its sandbox container), not only the job's preparation. */
async function claudeRunning(): Promise<true | undefined> {
  return (await jobList()).jobs.some((job) => job.state === "running" && job.phase === "running") || undefined;
}

async function statusBarTexts(): Promise<string[]> {
  return (await eyes({ op: "texts", selector: SELECTORS.statusBarItem })).texts ?? [];
}

/** Edit the open app.py as a user would (unsaved): replace `line`'s text, or add a line at the end. */
async function userEdit(editor: vscode.TextEditor, change: { line: number; text: string } | { append: string }): Promise<void> {
  const ok = await editor.edit((builder) => {
    if ("append" in change) {
      builder.insert(new vscode.Position(editor.document.lineCount - 1, 0), change.append);
    } else {
      builder.replace(editor.document.lineAt(change.line).range, change.text);
    }
  });
  assert.ok(ok, "the user's edit went in");
}

test("discard: Discard in the preview asks why; the reason becomes Claude's next turn and the file keeps its text", 180_000, async () => {
  await scenario("discard");
  await clearNotifications(vscode.commands);
  const editor = await openApp();
  const { done } = await improveSelection(editor);
  await waitForPreview();
  await clickPreview("Discard");
  await answerInputBox(/Why reject/, "keep the French greeting");
  await sleep(1000);
  const shown = await notifications();
  assert.ok(!shown.some((text) => /was not applied|applyProposal/.test(text)), `only the question, no note that it is kept: ${JSON.stringify(shown)}`);
  await notification(/Understood, keeping the French greeting/, 90_000);
  await done;
  await waitUntil("the follow-up job to end", 30_000, async () => !(await statusBarTexts()).some((text) => /jobs? running/.test(text)) || undefined);
  assert.match(await documentText(), /bonjour/);
  assert.doesNotMatch(await documentText(), /hola/);
  const left = await jobList();
  assert.equal(left.proposals.length, 0, `the discarded proposal is gone, and the follow-up proposes nothing: ${JSON.stringify(left.proposals)}; app.py is now ${JSON.stringify(await documentText())}`);
  await revertAndClose();
});

test("cancel: the progress notification's Cancel stops a running job within seconds", 120_000, async () => {
  await scenario("slow");
  await clearNotifications(vscode.commands);
  await openApp();
  const command = Promise.resolve(vscode.commands.executeCommand("channelcoder.ui.run"));
  await answerInputBox(/What should Claude do/, "wait for the slow model");
  await notification(/Claude: wait for the slow model/, 30_000);
  await waitUntil("Claude to run in its sandbox", 60_000, claudeRunning);
  await sleep(2000);
  const started = Date.now();
  await clickNotificationButton("Cancel");
  await command;
  const seconds = (Date.now() - started) / 1000;
  assert.ok(seconds < 15, `cancelled in ${seconds.toFixed(1)} s`);
  const jobs = (await jobList()).jobs;
  assert.ok(jobs.some((job) => job.state === "cancelled"), JSON.stringify(jobs));
  assert.ok(!jobs.some((job) => job.state === "running" || job.state === "queued"), JSON.stringify(jobs));
  await revertAndClose();
});

test("stale: an edit made while Claude worked gives one short notification; Review again re-offers the proposal on the current text", 180_000, async () => {
  await scenario("stale");
  await clearNotifications(vscode.commands);
  const editor = await openApp();
  const { done } = await improveSelection(editor);
  await notification(/Claude: Improve/, 30_000);
  await userEdit(editor, { append: "# mine\n" });
  const stale = await notification(/changed while Claude worked/, 90_000);
  await done;
  await sleep(1500);
  await eyes({ op: "screenshot", name: "stale-notification" });
  assert.match(stale, /app\.py changed while Claude worked, so its proposal was not applied\. It is kept\./);
  const about = (await notifications()).filter((text) => /proposal|applyProposal|changed since/.test(text));
  assert.equal(about.length, 1, `one notification about it: ${JSON.stringify(about)}`);
  await clickNotificationButton("Review again");
  await waitForPreview();
  await acceptInPreview();
  await waitUntil("Claude's change on top of the user's", 15_000, async () => {
    const text = await documentText();
    return (text.includes("ciao") && text.includes("# mine")) || undefined;
  });
  await vscode.commands.executeCommand("workbench.action.files.save");
  await vscode.commands.executeCommand("workbench.action.closeAllEditors");
});

test("conflict: a line both the user and Claude changed is shown with both versions, and resolved with VS Code's merge actions", 180_000, async () => {
  await scenario("conflict");
  await clearNotifications(vscode.commands);
  const editor = await openApp();
  const { done } = await improveSelection(editor);
  await notification(/Claude: Improve/, 30_000);
  await userEdit(editor, { line: 0, text: "GREETING = 'salut'" });
  await notification(/changed while Claude worked/, 90_000);
  await done;
  await clickNotificationButton("Review again");
  const rows = await waitForPreview();
  await eyes({ op: "screenshot", name: "conflict-preview" });
  assert.ok(rows.some((row) => row.includes("<<<<<<<")), `the preview shows the conflict: ${JSON.stringify(rows)}`);
  const note = await notification(/both changed/, 15_000);
  assert.match(note, /app\.py/);
  await acceptInPreview();
  const merged = await waitUntil("both versions between markers", 15_000, async () => {
    const text = await documentText();
    return /<<<<<<<[^\n]*\nGREETING = 'salut'\n=======\nGREETING = 'hallo'\n>>>>>>>/.test(text) ? text : undefined;
  });
  assert.ok(merged.includes("# mine"), "the rest of the user's text is kept");
  await waitUntil("app.py open at its conflict", 10_000, () => {
    const active = vscode.window.activeTextEditor;
    return (active?.document.uri.fsPath === appUri().fsPath && active.document.lineAt(active.selection.active.line).text.startsWith("<<<<<<<")) || undefined;
  });
  await eyes({ op: "screenshot", name: "conflict-in-editor" });
  await vscode.commands.executeCommand("merge-conflict.accept.incoming");
  await waitUntil("the conflict resolved to Claude's version", 15_000, async () => {
    const text = await documentText();
    return (!text.includes("<<<<<<<") && text.includes("hallo") && !text.includes("salut")) || undefined;
  });
  await vscode.commands.executeCommand("workbench.action.files.save");
  await vscode.commands.executeCommand("workbench.action.closeAllEditors");
});

test("doctor: Claude: Doctor opens its report with the engine, image and CLI checks", 180_000, async () => {
  const result = (await vscode.commands.executeCommand("channelcoder.doctor")) as { ok?: boolean; checks?: { name: string; ok: boolean }[] };
  assert.ok(result.checks && result.checks.length > 2, JSON.stringify(result));
  const report = await waitUntil("the doctor report in an editor", 30_000, () =>
    vscode.window.visibleTextEditors.find((editor) => editor.document.getText().startsWith("# channelcoder doctor")),
  );
  assert.match(report.document.getText(), /language server/);
  assert.ok(result.checks.every((check) => check.ok), `every check passes here: ${JSON.stringify(result.checks)}`);
  await eyes({ op: "screenshot", name: "doctor" });
  await vscode.commands.executeCommand("workbench.action.closeAllEditors");
});

/** The language server's process: a child of this extension host running `channelcoder lsp`. */
function serverPids(): number[] {
  const pids: number[] = [];
  for (const entry of readdirSync("/proc")) {
    if (!/^\d+$/.test(entry)) {
      continue;
    }
    try {
      const stat = readFileSync(`/proc/${entry}/stat`, "utf8");
      const parent = Number(stat.slice(stat.lastIndexOf(")") + 2).split(" ")[1]);
      const cmdline = readFileSync(`/proc/${entry}/cmdline`, "utf8").split("\0");
      if (parent === process.pid && cmdline.some((arg) => arg.endsWith("channelcoder")) && cmdline.includes("lsp")) {
        pids.push(Number(entry));
      }
    } catch {
      // gone meanwhile
    }
  }
  return pids;
}

test("crash: a SIGKILLed server is said, its running job is marked lost (transcript, status bar, job list), and it restarts; its sandbox is gone within 10 s and its pending proposal is offered again", 240_000, async () => {
  // A proposal left pending (the user typed while Claude worked)…
  await scenario("pending");
  await clearNotifications(vscode.commands);
  const editor = await openApp();
  const first = await improveSelection(editor);
  await notification(/Claude: Improve/, 30_000);
  await userEdit(editor, { append: "# again\n" });
  await notification(/changed while Claude worked/, 90_000);
  await first.done;
  assert.equal((await jobList()).proposals.length, 1, "a proposal is pending");
  await clearNotifications(vscode.commands);
  // …and a job running when the server dies.
  await scenario("slow");
  editor.selection = new vscode.Selection(0, 0, 0, editor.document.lineAt(0).text.length);
  const { done } = await improveSelection(editor);
  await notification(/Claude: Improve/, 30_000);
  await waitUntil("Claude to run in its sandbox", 60_000, claudeRunning);
  assert.ok((await statusBarTexts()).some((text) => text.includes("Claude: 1 job running")), JSON.stringify(await statusBarTexts()));
  const [pid] = serverPids();
  assert.ok(pid, "found the language server's process");
  process.kill(pid, "SIGKILL");
  const said = await notification(/language server stopped unexpectedly/, 15_000);
  assert.match(said, /the job it was running is lost\. Restarting it \(attempt 1 of 3\)/);
  await withTimeout(done, 10_000, "the lost job's command to settle");
  await waitUntil("the status bar to say the job is lost", 10_000, async () => (await statusBarTexts()).some((text) => text.includes("Claude: 1 job lost")) || undefined);
  await eyes({ op: "screenshot", name: "server-crashed" });
  await waitUntil("a new language server", 60_000, () => {
    const now = serverPids();
    return (now.length === 1 && now[0] !== pid) || undefined;
  });
  const restarted = Date.now();
  await serverReady();
  await waitUntil("the dead server's sandbox to be removed", 10_000, async () => (await containers()).length === 0 || undefined);
  const gone = (Date.now() - restarted) / 1000;
  assert.ok(gone <= 10, `its sandbox was removed ${gone.toFixed(1)} s after the restart`);
  await notification(/Offering again a proposal saved before the server stopped/, 30_000);
  await waitForPreview();
  await eyes({ op: "screenshot", name: "proposal-offered-again" });
  await acceptInPreview();
  await waitUntil("the proposal applied after the restart", 15_000, async () => {
    const text = await documentText();
    return (text.includes("hej") && text.includes("# again")) || undefined;
  });
  const shown = vscode.commands.executeCommand("channelcoder.ui.jobs");
  const rows = await waitUntil("the job list", 15_000, async () => {
    const texts = (await eyes({ op: "texts", selector: SELECTORS.quickInputRow })).texts ?? [];
    return texts.some((text) => /lost/.test(text)) ? texts : undefined;
  });
  await eyes({ op: "screenshot", name: "job-list-lost" });
  await eyes({ op: "key", key: "Escape" });
  await shown;
  assert.ok(rows.some((row) => /Improve the selected code/.test(row) && /lost/.test(row)), JSON.stringify(rows));
  // The restarted server runs jobs again.
  await scenario("quick");
  const again = (await vscode.commands.executeCommand("channelcoder.ask", { prompt: "anything to change?" })) as { ok?: boolean };
  assert.equal(again?.ok, true, JSON.stringify(again));
  await revertAndClose();
});

test("disk: a closed file changed on disk while Claude worked gives the same short notification; Review again offers the proposal on the new text", 180_000, async () => {
  await scenario("disk");
  await clearNotifications(vscode.commands);
  const closed = path.join(workspace(), "closed.py");
  writeFileSync(closed, "GREETING = 'hallo'\n");
  const running = Promise.resolve(vscode.commands.executeCommand("channelcoder.run", { prompt: "Translate the greeting to Norwegian" }));
  await waitUntil("Claude to run in its sandbox", 60_000, claudeRunning);
  writeFileSync(closed, "GREETING = 'hallo'\n# on disk\n");
  const stale = await notification(/changed while Claude worked/, 90_000);
  await running;
  assert.match(stale, /closed\.py changed while Claude worked/);
  const shown = await notifications();
  assert.ok(!shown.some((text) => /applyProposal|was not offered/.test(text)), `in VS Code's words only: ${JSON.stringify(shown)}`);
  await clickNotificationButton("Review again");
  await waitForPreview();
  await acceptInPreview();
  await waitUntil("Claude's change on top of the file's new text", 15_000, async () => {
    const text = (await vscode.workspace.openTextDocument(vscode.Uri.file(closed))).getText();
    return (text.includes("hei") && text.includes("# on disk")) || undefined;
  });
  await vscode.commands.executeCommand("workbench.action.files.saveAll");
  await vscode.commands.executeCommand("workbench.action.closeAllEditors");
});

test(
  "missing-server: not found, the error names channelcoder.serverPath; the picked file goes to the user settings and the server starts",
  120_000,
  async () => {
    const wanted = process.env.CHANNELCODER_E2E_SERVER_PATH ?? "";
    assert.ok(wanted, "CHANNELCODER_E2E_SERVER_PATH names the server to pick");
    await api();
    const shown = await notification(/not found/, 60_000);
    assert.match(shown, /set channelcoder\.serverPath to its executable/);
    await eyes({ op: "screenshot", name: "server-not-found" });
    await clickNotificationButton("Choose file");
    await waitUntil("the file picker", 15_000, async () => (await eyes({ op: "texts", selector: SELECTORS.quickInput })).texts?.some((text) => text.length > 0) || undefined);
    await eyes({ op: "type", text: wanted, replace: true });
    await sleep(500);
    await eyes({ op: "screenshot", name: "server-picker" });
    await eyes({ op: "key", key: "Enter" });
    await serverReady();
    const setting = vscode.workspace.getConfiguration("channelcoder").inspect<string>("serverPath");
    assert.equal(setting?.globalValue, wanted, "written to the user settings");
    const shownNow = await notifications();
    assert.ok(!shownNow.some((text) => /serverPath changed/.test(text)), `no restart question: ${JSON.stringify(shownNow)}`);
  },
  { alone: true },
);

export async function run(): Promise<void> {
  await runAll();
}
