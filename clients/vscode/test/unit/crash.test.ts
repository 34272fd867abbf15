import { strict as assert } from "node:assert";
import { test } from "node:test";

import { activate, settle } from "../helpers/harness";
import { state } from "../helpers/vscode-stub";
import { CRASH_NOTICE_DELAY_MS } from "../../src/extension";
import { CLIENT_COMMANDS, SERVER_COMMANDS } from "../../src/ids";
import { RestartBudget } from "../../src/restarts";

function runFromCodeAction(client: { options: { middleware?: { executeCommand?: unknown } } }, command: string, argument: unknown): Promise<unknown> {
  const middleware = client.options.middleware?.executeCommand as (c: string, a: unknown[], n: unknown) => Promise<unknown>;
  return middleware(command, [argument], () => undefined);
}

async function closed(client: { options: { errorHandler?: unknown } }): Promise<{ action: number; handled?: boolean }> {
  const handler = client.options.errorHandler as { closed(): Promise<{ action: number; handled?: boolean }> | { action: number; handled?: boolean } };
  return handler.closed();
}

test("the server dies mid-job: the job ends as lost (transcript, status bar, job list), one notification, the server restarts", async () => {
  const { client } = await activate();
  const running = runFromCodeAction(client, SERVER_COMMANDS.run, { prompt: "Improve this" });
  const request = await client.nextCommand(SERVER_COMMANDS.run);
  const jobId = (request.params.arguments?.[0] as { jobId: string }).jobId;
  await settle();
  assert.equal(state.statusBar.text, "$(sync~spin) Claude: 1 job running");
  assert.equal(state.statusBar.visible, true);

  const answer = await closed(client);
  assert.deepEqual(answer, { action: 2, handled: true }, "restart, and the library says nothing itself");
  assert.equal(await running, undefined, "the job's command settles at once, with no second error");
  assert.equal(state.progress[0]?.finished, true, "its progress notification closes");
  await new Promise((resolve) => setTimeout(resolve, CRASH_NOTICE_DELAY_MS + 100));
  const warnings = state.messages.filter((m) => m.level !== "info");
  assert.equal(warnings.length, 1, JSON.stringify(state.messages));
  assert.match(warnings[0]?.text ?? "", /language server stopped unexpectedly — the job it was running is lost\. Restarting it \(attempt 1 of 3\)/);
  assert.equal(state.statusBar.text, "$(warning) Claude: 1 job lost");
  const transcript = (state.output.get("Claude") ?? []).join("");
  assert.match(transcript, new RegExp(`✗ lost: the language server stopped while "Claude: Improve this" \\(job ${jobId.slice(0, 8)}\\) was running`));

  // The new server knows nothing of it; the job list still shows it, lost.
  client.autoAnswer = (r) => (r.params.command === SERVER_COMMANDS.jobs ? { jobs: [], proposals: [] } : undefined);
  const listing = state.commands.get(CLIENT_COMMANDS.jobs)?.();
  await settle();
  const pick = state.quickPicks[0]?.items as { label: string; description?: string; detail?: string }[];
  assert.ok(pick.some((item) => item.label === "$(warning) Claude: Improve this" && /^lost/.test(item.description ?? "") && item.detail?.includes(jobId)), JSON.stringify(pick));
  await listing;
});

test("a server that keeps dying is restarted three times in three minutes, then left stopped with one error", async () => {
  const { client } = await activate();
  const actions = [];
  for (let i = 0; i < 4; i++) {
    actions.push((await closed(client)).action);
  }
  assert.deepEqual(actions, [2, 2, 2, 1]);
  await new Promise((resolve) => setTimeout(resolve, CRASH_NOTICE_DELAY_MS + 100));
  const errors = state.messages.filter((m) => m.level === "error");
  assert.equal(errors.length, 1);
  assert.equal(state.messages.filter((m) => m.level === "warning").length, 3, "one notice per restart");
  assert.match(errors[0]?.text ?? "", /stopped 4 times in 3 minutes, so it is not restarted.*Claude: Restart language server/);
  assert.equal(state.context.get("channelcoder.serverRunning"), false);
});

test("the restart budget frees up as the window slides", () => {
  let now = 0;
  const budget = new RestartBudget(3, 3, () => now);
  assert.deepEqual([budget.take(), budget.take(), budget.take(), budget.take()], [1, 2, 3, undefined]);
  now = 3 * 60_000 + 1;
  assert.equal(budget.take(), 1);
});

test("settings problems from the server are one grouped notification, once per session", async () => {
  const { client } = await activate();
  const messages = ["channelcoder: unknown option 'modle' in the editor settings (initializationOptions); ignored", "channelcoder: setting 'maxJobs': must be a positive integer; using the default"];
  for (const message of messages) {
    client.notify("window/showMessage", { type: 2, message });
  }
  await new Promise((resolve) => setTimeout(resolve, 600));
  for (const message of messages) {
    client.notify("window/showMessage", { type: 2, message });
  }
  await new Promise((resolve) => setTimeout(resolve, 600));
  assert.equal(state.messages.length, 1, JSON.stringify(state.messages));
  assert.equal(state.messages[0]?.text, "Claude settings: 2 problems — (1) unknown option 'modle' in the editor settings (initializationOptions); ignored (2) setting 'maxJobs': must be a positive integer; using the default");
  assert.deepEqual(state.messages[0]?.actions, ["Open settings"]);
  client.notify("window/showMessage", { type: 3, message: "Claude: Translated the greeting." });
  assert.equal(state.messages[1]?.text, "Claude: Translated the greeting.", "other messages pass as they are");
});

test("after a restart the job list still shows the jobs this window ran before it, once each", async () => {
  const { client } = await activate();
  const first = runFromCodeAction(client, SERVER_COMMANDS.run, { prompt: "Add docstrings" });
  const request = await client.nextCommand(SERVER_COMMANDS.run);
  const jobId = (request.params.arguments?.[0] as { jobId: string }).jobId;
  request.resolve({ jobId, ok: true, text: "done" });
  await first;
  await closed(client);
  const after = runFromCodeAction(client, SERVER_COMMANDS.run, { prompt: "Rename the helper" });
  const second = await client.nextCommand(SERVER_COMMANDS.run);
  const secondId = (second.params.arguments?.[0] as { jobId: string }).jobId;
  second.resolve({ jobId: secondId, ok: true, text: "done" });
  await after;
  client.autoAnswer = (r) => (r.params.command === SERVER_COMMANDS.jobs ? { jobs: [{ jobId: secondId, state: "succeeded", prompt: "Rename the helper" }], proposals: [] } : undefined);
  const listing = state.commands.get(CLIENT_COMMANDS.jobs)?.();
  await settle();
  const items = state.quickPicks[0]?.items as { label: string; description?: string }[];
  assert.deepEqual(
    items.map((item) => [item.label, item.description?.split(" · ")[0]]),
    [
      ["$(check) Rename the helper", "succeeded"],
      ["$(check) Claude: Add docstrings", "succeeded"],
    ],
  );
  await listing;
});
