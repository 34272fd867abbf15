import { strict as assert } from "node:assert";
import { test } from "node:test";

import { ResponseError } from "vscode-languageserver-protocol";

import { activate, settle } from "../helpers/harness";
import { ProgressLocation, state } from "../helpers/vscode-stub";
import { SERVER_COMMANDS } from "../../src/ids";

/** A code action's command runs through the client middleware, as VS Code would call it. */
function runFromCodeAction(client: { options: { middleware?: { executeCommand?: unknown } } }, command: string, argument: unknown): Promise<unknown> {
  const middleware = client.options.middleware?.executeCommand as (c: string, a: unknown[], n: unknown) => Promise<unknown>;
  return middleware(command, [argument], () => {
    throw new Error("the plain languageclient path would bypass the job UI");
  });
}

test("a job from a code action gets exactly one cancellable notification, fed by its own token", async () => {
  const { client } = await activate();
  const running = runFromCodeAction(client, SERVER_COMMANDS.run, { prompt: "Improve this", uri: "file:///ws/app.py" });
  const request = await client.nextCommand(SERVER_COMMANDS.run);
  const token = request.params.workDoneToken as string;
  const jobId = (request.params.arguments?.[0] as { jobId: string }).jobId;
  assert.equal(token, `channelcoder-${jobId}`);

  client.progress(token, { kind: "begin", title: "Claude: Improve this", cancellable: true, message: "queued" });
  client.progress(token, { kind: "report", message: "running" });
  client.progress("someone-else", { kind: "report", message: "not mine" });
  client.progress(token, { kind: "report", message: "Edit app.py", percentage: 40 });
  client.progress(token, { kind: "end", message: "done in 1.0 s" });
  request.resolve({ jobId, ok: true, text: "done" });
  await running;

  assert.equal(state.progress.length, 1, "one progress UI per job");
  const [progress] = state.progress;
  assert.equal(progress?.location, ProgressLocation.Notification);
  assert.equal(progress?.cancellable, true);
  assert.equal(progress?.title, "Claude: Improve this");
  assert.deepEqual(progress?.reports, [{ message: "queued" }, { message: "running" }, { message: "Edit app.py", increment: 40 }]);
  assert.ok(progress?.finished);
});

test("the notification's Cancel button cancels the job on the server through its token", async () => {
  const { client } = await activate();
  const running = runFromCodeAction(client, SERVER_COMMANDS.fix, { uri: "file:///ws/app.py", diagnostic: { message: "boom" } });
  const request = await client.nextCommand(SERVER_COMMANDS.fix);
  const token = request.params.workDoneToken;
  assert.equal(state.progress[0]?.title, "Claude: fix boom");

  state.progress[0]?.cancel();
  await settle();
  assert.deepEqual(
    client.notifications.filter((n) => n.method === "window/workDoneProgress/cancel"),
    [{ method: "window/workDoneProgress/cancel", params: { token } }],
  );
  assert.equal(state.progress[0]?.finished, false, "the notification stays until the server confirms");
  request.resolve({ ok: false, error: { code: "cancelled", message: "cancelled" } });
  await running;
  assert.ok(state.progress[0]?.finished);
  assert.deepEqual(state.messages, [], "a cancel is not reported as an error");
});

test("a failed job's error is the server's showMessage; the client does not repeat it", async () => {
  const { client } = await activate();
  const running = runFromCodeAction(client, SERVER_COMMANDS.run, { prompt: "x" });
  const request = await client.nextCommand(SERVER_COMMANDS.run);
  request.resolve({ ok: false, error: { code: "docker-unavailable", message: "no engine", hint: "start Docker" } });
  const result = (await running) as { ok: boolean };
  assert.equal(result.ok, false);
  assert.deepEqual(state.messages, []);
});

test("a JSON-RPC error reaches the user as one notification with its hint", async () => {
  const { client } = await activate();
  const running = runFromCodeAction(client, SERVER_COMMANDS.run, {});
  const request = await client.nextCommand(SERVER_COMMANDS.run);
  const hint = "pass {\"prompt\": \"…\"}";
  request.reject(new ResponseError(-32602, `channelcoder.run needs a prompt (hint: ${hint})`, { code: "usage", hint }));
  assert.equal(await running, undefined);
  assert.equal(state.messages.length, 1);
  assert.equal(state.messages[0]?.level, "error");
  assert.equal(state.messages[0]?.text, `Claude: channelcoder.run needs a prompt — ${hint}`, "the hint is shown once");
  assert.deepEqual(state.messages[0]?.actions, ["Show transcript"]);
});

test("a server command that is not a job is a plain request, its error shown with the hint", async () => {
  const { client } = await activate();
  const running = runFromCodeAction(client, SERVER_COMMANDS.cancel, { jobId: "nope" });
  const request = await client.nextCommand(SERVER_COMMANDS.cancel);
  assert.equal(request.params.workDoneToken, undefined);
  assert.deepEqual(request.params.arguments, [{ jobId: "nope" }]);
  request.reject(new ResponseError(-32602, "unknown job 'nope'", { hint: "see Claude: Show jobs" }));
  await running;
  assert.equal(state.progress.length, 0);
  assert.match(state.messages[0]?.text ?? "", /unknown job 'nope' — see Claude: Show jobs/);
});

test("the palette's Build sandbox image (a server id) also runs under one cancellable notification", async () => {
  const { client } = await activate();
  const middleware = client.options.middleware?.executeCommand as (c: string, a: unknown[], n: unknown) => Promise<unknown>;
  const running = middleware(SERVER_COMMANDS.buildImage, [], () => undefined);
  const request = await client.nextCommand(SERVER_COMMANDS.buildImage);
  assert.ok(request.params.workDoneToken);
  client.progress(request.params.workDoneToken as string, { kind: "report", message: "building image: Step 3/9" });
  request.resolve({ ok: true, image: "channelcoder-auto:abc", message: "built" });
  await running;
  assert.equal(state.progress[0]?.title, "Claude: build sandbox image");
  assert.deepEqual(state.progress[0]?.reports, [{ message: "building image: Step 3/9" }]);
});

test("cancelling an image build cancels its request (an image build is not a job the progress cancel reaches)", async () => {
  const { client } = await activate();
  const middleware = client.options.middleware?.executeCommand as (c: string, a: unknown[], n: unknown) => Promise<unknown>;
  const running = middleware(SERVER_COMMANDS.buildImage, [{ force: true }], () => undefined);
  const request = await client.nextCommand(SERVER_COMMANDS.buildImage);
  assert.equal(request.token?.isCancellationRequested, false);
  state.progress[0]?.cancel();
  await settle();
  assert.equal(request.token?.isCancellationRequested, true);
  assert.equal(client.notifications.filter((n) => n.method === "window/workDoneProgress/cancel").length, 0);
  request.reject(new ResponseError(-32800, "cancelled"));
  await running;
  assert.deepEqual(state.messages, [], "a cancel is not reported as an error");
});

test("the live transcript shows streamed text, tool calls and the footer in the Claude channel", async () => {
  const { client } = await activate();
  const running = runFromCodeAction(client, SERVER_COMMANDS.run, { prompt: "Say hi" });
  const request = await client.nextCommand(SERVER_COMMANDS.run);
  const jobId = (request.params.arguments?.[0] as { jobId: string }).jobId;
  const events = [
    { type: "status", phase: "queued" },
    { type: "text-delta", text: "Hel", messageId: "m1" },
    { type: "text-delta", text: "lo", messageId: "m1" },
    { type: "text", text: "Hello", messageId: "m1", streamed: true },
    { type: "tool-use", id: "t1", name: "Edit", summary: "Edit app.py" },
    { type: "result", ok: true, durationMs: 1500, numTurns: 2, costUsd: 0.0012 },
  ];
  for (const event of events) {
    client.notify("channelcoder/event", { jobId, event });
  }
  request.resolve({ jobId, ok: true });
  await running;
  const text = (state.output.get("Claude") ?? []).join("");
  assert.equal(
    text,
    `━━ Claude: Say hi (job ${jobId.slice(0, 8)}) ━━\n[queued]\nHello\n▸ Edit app.py\n✓ done — 1.5 s · 2 turns · $0.0012\n`,
  );
  assert.deepEqual(state.shownChannels, ["Claude"], "revealed once, at the start");
});
