/**
 * The whole extension — activate(), the real vscode-languageclient, its middleware — against
 * the real `channelcoder lsp` and the scripted model, with the stubbed `vscode` standing in for
 * the editor. Run by tests/clients/test_vscode_protocol.py.
 */

import "../helpers/install-vscode";

import { strict as assert } from "node:assert";
import { test } from "node:test";

import type * as Extension from "../../src/extension";
import { CLIENT_COMMANDS, SERVER_COMMANDS } from "../../src/ids";
import { CancellationTokenSource, CodeAction, ProgressLocation, Selection, Uri, reset, state, textDocument, vscode } from "../helpers/vscode-stub";
import { testSettings, withTimeout } from "./session";

const extension = require("../../src/extension") as typeof Extension;

test("extension: a code action from the real language client runs under one notification and its proposal goes to the refactor preview", { timeout: 240_000 }, async () => {
  reset();
  const workspace = process.env.CHANNELCODER_TEST_WORKSPACE ?? "";
  assert.ok(workspace, "run through tests/clients/test_vscode_protocol.py");
  state.workspaceFolders.push({ uri: Uri.file(workspace), name: "repo", index: 0 });
  state.settings.set("serverPath", process.env.CHANNELCODER_TEST_SERVER_PATH);
  for (const [key, value] of Object.entries(testSettings())) {
    state.settings.set(key, value);
  }
  const app = Uri.file(`${workspace}/app.py`);
  state.textDocuments.push(textDocument(app, "GREETING = 'hello'\n"));

  const subscriptions: { dispose(): unknown }[] = [];
  const ext = await withTimeout(extension.activate({ subscriptions } as never), 60_000, () => "activation");
  try {
    const serverLog = () => (state.output.get("Claude (channelcoder) server") ?? []).join("\n").slice(-3000);
    assert.equal(state.context.get("channelcoder.serverRunning"), true, `${JSON.stringify(state.messages)}\n${serverLog()}`);
    for (const id of [...Object.values(SERVER_COMMANDS), ...Object.values(CLIENT_COMMANDS)]) {
      assert.ok(state.commands.has(id), `${id} is registered (server ids by the language client, the rest by the extension)`);
    }

    // The light bulb on a selection: the server's actions, converted by the language client.
    assert.equal(state.codeActionProviders.length, 1, "the language client registered the server's code actions");
    const document = state.textDocuments[0];
    const actions = (await state.codeActionProviders[0]?.provideCodeActions(document, new Selection(0, 0, 0, 18), { diagnostics: [], triggerKind: 1 }, new CancellationTokenSource().token)) ?? [];
    const improve = actions.find((action): action is CodeAction => action instanceof CodeAction && action.title === "Improve with Claude");
    assert.ok(improve?.command, `code actions: ${JSON.stringify(actions)}`);
    assert.equal(improve.command.command, SERVER_COMMANDS.run);

    const result = (await withTimeout(
      Promise.resolve(vscode.commands.executeCommand(improve.command.command, ...(improve.command.arguments ?? []))),
      120_000,
      () => "the code action's command",
    )) as { ok: boolean; jobId: string; proposalId: string };
    assert.equal(result.ok, true, JSON.stringify(result));
    assert.equal(result.proposalId, result.jobId);

    assert.equal(state.progress.length, 1, "exactly one progress UI for the job");
    assert.equal(state.progress[0]?.location, ProgressLocation.Notification);
    assert.equal(state.progress[0]?.cancellable, true);
    assert.ok(state.progress[0]?.reports.some((r) => /running/.test(r.message ?? "")), JSON.stringify(state.progress[0]?.reports));

    const deadline = Date.now() + 20_000;
    while (state.appliedEdits.length === 0 && Date.now() < deadline) {
      await new Promise((resolve) => setTimeout(resolve, 25));
    }
    assert.equal(state.appliedEdits.length, 1, "the proposal reached workspace.applyEdit");
    const [{ edit }] = state.appliedEdits as [(typeof state.appliedEdits)[0]];
    assert.ok(edit.textEdits.length > 0);
    for (const entry of edit.textEdits) {
      assert.equal(entry.uri.fsPath, app.fsPath);
      assert.equal(entry.metadata?.needsConfirmation, true, "VS Code shows the refactor preview");
    }
    assert.ok(edit.textEdits.some((entry) => entry.edit.newText.includes("bonjour")), JSON.stringify(edit.textEdits));

    const transcript = (state.output.get("Claude") ?? []).join("");
    assert.match(transcript, /━━ Claude: .*Improve/);
    assert.match(transcript, /✓ done/);
    assert.deepEqual(state.messages.filter((m) => m.level === "error"), []);
  } finally {
    await withTimeout(extension.deactivate(), 30_000, () => "deactivation");
    ext.dispose();
  }
});
