import { strict as assert } from "node:assert";
import { test } from "node:test";

import { activate, settle } from "../helpers/harness";
import { Diagnostic, DiagnosticSeverity, Range, Selection, Uri, state, vscode } from "../helpers/vscode-stub";
import { CLIENT_COMMANDS, SERVER_COMMANDS } from "../../src/ids";

const FILE = Uri.file("/ws/app.py");

function openEditor(selection = new Selection(1, 0, 2, 5)): void {
  const document = { uri: FILE, version: 3 };
  state.textDocuments.push(document);
  state.activeTextEditor = { document, selection };
}

test("Ask…: the input box's question goes to channelcoder.ask with the file, the selection, a jobId and a token", async () => {
  const { client } = await activate();
  openEditor();
  state.inputAnswers.push("what does this return?");
  const running = vscode.commands.executeCommand(CLIENT_COMMANDS.ask);
  const request = await client.nextCommand(SERVER_COMMANDS.ask);
  const argument = request.params.arguments?.[0] as Record<string, unknown>;
  assert.equal(argument.prompt, "what does this return?");
  assert.equal(argument.uri, "file:///ws/app.py");
  assert.deepEqual(argument.range, { start: { line: 1, character: 0 }, end: { line: 2, character: 5 } });
  assert.match(String(argument.jobId), /^[A-Za-z0-9_.-]{1,64}$/);
  assert.equal(request.params.workDoneToken, `channelcoder-${String(argument.jobId)}`);
  assert.equal(state.progress[0]?.title, "Claude: what does this return?");
  request.resolve({ jobId: argument.jobId, ok: true, text: "42" });
  assert.deepEqual(await running, { jobId: argument.jobId, ok: true, text: "42" });
});

test("Ask… with an empty question asks the server's default (explain); Esc sends nothing", async () => {
  const { client } = await activate();
  openEditor(new Selection(0, 0, 0, 0));
  state.inputAnswers.push(undefined);
  await vscode.commands.executeCommand(CLIENT_COMMANDS.ask);
  assert.equal(client.requests.length, 0);
  assert.equal(state.progress.length, 0);

  state.inputAnswers.push("  ");
  void vscode.commands.executeCommand(CLIENT_COMMANDS.ask);
  const request = await client.nextCommand(SERVER_COMMANDS.ask);
  const argument = request.params.arguments?.[0] as Record<string, unknown>;
  assert.ok(!("prompt" in argument));
  assert.ok(!("range" in argument), "an empty selection is not sent as a range");
  assert.equal(argument.uri, "file:///ws/app.py");
});

test("Run in sandbox…: an empty prompt is refused by the input box, a real one runs channelcoder.run", async () => {
  const { client } = await activate();
  openEditor();
  state.inputAnswers.push("");
  await vscode.commands.executeCommand(CLIENT_COMMANDS.run);
  assert.equal(client.requests.length, 0);
  const validate = state.inputBoxes[0]?.validateInput as (v: string) => string | undefined;
  assert.equal(validate(" "), "Say what Claude should do");

  state.inputAnswers.push("add type hints");
  void vscode.commands.executeCommand(CLIENT_COMMANDS.run);
  const request = await client.nextCommand(SERVER_COMMANDS.run);
  const argument = request.params.arguments?.[0] as Record<string, unknown>;
  assert.equal(argument.prompt, "add type hints");
  assert.equal(argument.uri, "file:///ws/app.py");
});

test("Fix diagnostic: the problem under the cursor goes to channelcoder.fix as an LSP diagnostic", async () => {
  const { client } = await activate();
  openEditor(new Selection(4, 2, 4, 2));
  const here = new Diagnostic(new Range(4, 0, 4, 9), "undefined name 'x'", DiagnosticSeverity.Warning);
  here.source = "pyflakes";
  here.code = { value: "F821", target: Uri.parse("https://example.com") };
  state.diagnostics.set(FILE.toString(), [new Diagnostic(new Range(0, 0, 0, 1), "elsewhere"), here]);
  void vscode.commands.executeCommand(CLIENT_COMMANDS.fix);
  const request = await client.nextCommand(SERVER_COMMANDS.fix);
  assert.deepEqual(request.params.arguments?.[0], {
    uri: "file:///ws/app.py",
    diagnostic: {
      range: { start: { line: 4, character: 0 }, end: { line: 4, character: 9 } },
      message: "undefined name 'x'",
      severity: 2,
      source: "pyflakes",
      code: "F821",
    },
    jobId: (request.params.arguments?.[0] as { jobId: string }).jobId,
  });
  assert.equal(state.quickPicks.length, 0, "one candidate: no picker");
});

test("Fix diagnostic: with no problem at the cursor the user picks one; none at all is said plainly", async () => {
  const { client } = await activate();
  openEditor(new Selection(9, 0, 9, 0));
  state.diagnostics.set(FILE.toString(), [new Diagnostic(new Range(0, 0, 0, 1), "first"), new Diagnostic(new Range(3, 0, 3, 1), "second")]);
  state.quickPickAnswers.push((items: unknown) => (items as unknown[])[1]);
  void vscode.commands.executeCommand(CLIENT_COMMANDS.fix);
  const request = await client.nextCommand(SERVER_COMMANDS.fix);
  assert.equal((request.params.arguments?.[0] as { diagnostic: { message: string } }).diagnostic.message, "second");

  state.diagnostics.clear();
  await vscode.commands.executeCommand(CLIENT_COMMANDS.fix);
  assert.match(state.messages.at(-1)?.text ?? "", /no problems/);
});

test("Explain selection without an open file says so and sends nothing", async () => {
  const { client } = await activate();
  await vscode.commands.executeCommand(CLIENT_COMMANDS.explain);
  assert.equal(client.requests.length, 0);
  assert.match(state.messages[0]?.text ?? "", /open a file/);
});

test("Cancel job: with two running jobs the user picks one, then channelcoder.cancel names it", async () => {
  const { client } = await activate();
  client.autoAnswer = (request) =>
    request.params.command === SERVER_COMMANDS.jobs
      ? {
          jobs: [
            { jobId: "b", state: "running", phase: "running", prompt: "second" },
            { jobId: "a", state: "queued", phase: "queued", prompt: "first" },
            { jobId: "z", state: "succeeded", prompt: "old" },
          ],
          proposals: [],
        }
      : undefined;
  state.quickPickAnswers.push((items: unknown) => (items as { job: { jobId: string } }[]).find((i) => i.job.jobId === "a"));
  void vscode.commands.executeCommand(CLIENT_COMMANDS.cancel);
  const request = await client.nextCommand(SERVER_COMMANDS.cancel);
  assert.deepEqual(request.params.arguments, [{ jobId: "a" }]);
  assert.equal((state.quickPicks[0]?.items as unknown[]).length, 2, "only running and queued jobs are offered");
});

test("Cancel job with nothing running says so", async () => {
  const { client } = await activate();
  client.autoAnswer = () => ({ jobs: [{ jobId: "z", state: "failed" }], proposals: [] });
  await vscode.commands.executeCommand(CLIENT_COMMANDS.cancel);
  assert.match(state.messages[0]?.text ?? "", /no job is running/);
  assert.equal(client.requests.filter((r) => r.params.command === SERVER_COMMANDS.cancel).length, 0);
});

test("Show jobs: a pending proposal can be reviewed again (applyProposal)", async () => {
  const { client } = await activate();
  client.autoAnswer = (request) =>
    request.params.command === SERVER_COMMANDS.jobs
      ? { jobs: [], proposals: [{ proposalId: "p1", jobId: "p1", prompt: "rename", files: ["app.py"] }] }
      : undefined;
  state.quickPickAnswers.push((items: unknown) => (items as unknown[])[0], "Review and apply");
  void vscode.commands.executeCommand(CLIENT_COMMANDS.jobs);
  const request = await client.nextCommand(SERVER_COMMANDS.applyProposal);
  assert.deepEqual(request.params.arguments, [{ jobId: "p1" }]);
});

test("commands say so when the server is not running", async () => {
  const { client } = await activate({ startError: new Error("spawn ENOENT") });
  state.messages.length = 0;
  state.inputAnswers.push("hello");
  await vscode.commands.executeCommand(CLIENT_COMMANDS.run);
  await settle();
  assert.equal(client.requests.length, 0);
  assert.match(state.messages[0]?.text ?? "", /not running/);
});
