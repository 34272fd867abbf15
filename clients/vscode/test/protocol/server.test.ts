/**
 * The extension's protocol code against the real `channelcoder lsp`, with the scripted model.
 * Each test is run by tests/clients/test_vscode_protocol.py (which starts the model with that
 * test's scenario, prepares the workspace and passes the settings: native or sandboxed).
 */

import { strict as assert } from "node:assert";
import { readFileSync } from "node:fs";
import * as path from "node:path";
import { test } from "node:test";

import { CodeActionRequest, DiagnosticSeverity, type CodeAction, type Command } from "vscode-languageserver-protocol";

import type { ChannelEvent, JobResult } from "../../src/events";
import { CLIENT_COMMANDS, JOB_COMMANDS, SERVER_COMMANDS } from "../../src/ids";
import type { Outcome, ProgressValue } from "../../src/jobs";
import { hostRunLabels, runsOnHostMessage } from "../../src/proposals";
import { TranscriptFormatter } from "../../src/transcript";
import { ServerSession, testSettings } from "./session";

const TIMEOUT = { timeout: 240_000 };
const ORIGINAL = "GREETING = 'hello'\n";

async function withServer(body: (session: ServerSession) => Promise<void>): Promise<void> {
  const session = await ServerSession.start();
  let failed = false;
  try {
    await body(session);
  } catch (error) {
    failed = true;
    throw error;
  } finally {
    const code = await session.close();
    if (!failed) {
      assert.equal(code, 0, `the server exits cleanly after shutdown/exit:\n${session.stderr.slice(-2000)}`);
    }
  }
}

function progressRecorder(): { values: ProgressValue[]; observer: { progress(value: ProgressValue): void } } {
  const values: ProgressValue[] = [];
  return { values, observer: { progress: (value) => values.push(value) } };
}

function resultOf<T>(outcome: Outcome): T {
  return (outcome.kind === "lost" ? {} : outcome.kind === "ok" ? outcome.result : outcome.result ?? {}) as unknown as T;
}

function kinds(events: ChannelEvent[]): string[] {
  return events.map((event) => event.type);
}

test("capabilities: every server command the extension relies on is advertised, and code actions run job commands", TIMEOUT, async () => {
  await withServer(async (session) => {
    const advertised = new Set(session.initialized.capabilities.executeCommandProvider?.commands ?? []);
    assert.deepEqual(Object.values(SERVER_COMMANDS).filter((id) => !advertised.has(id)), [], "commands the extension calls but the server lacks");
    assert.deepEqual(Object.values(CLIENT_COMMANDS).filter((id) => advertised.has(id)), [], "a client id the language client would register twice");

    const uri = await session.open("app.py", ORIGINAL);
    const range = { start: { line: 0, character: 0 }, end: { line: 0, character: 8 } };
    const diagnostic = { range, message: "name 'GREETING' is never used", severity: DiagnosticSeverity.Warning, source: "lint" };
    const actions = (await session.connection.sendRequest(CodeActionRequest.type, {
      textDocument: { uri },
      range,
      context: { diagnostics: [diagnostic] },
    })) as (CodeAction | Command)[];
    const commands = actions.map((action) => ("command" in action && typeof action.command === "object" ? action.command.command : (action as Command).command));
    assert.ok(commands.length >= 2, `code actions: ${JSON.stringify(actions)}`);
    for (const command of commands) {
      assert.ok(JOB_COMMANDS.has(command), `${command} from a code action would bypass the job progress UI`);
    }
    assert.ok(commands.includes(SERVER_COMMANDS.fix));
  });
});

test("run: progress on the client's own token, every event, and the proposal applied to the unsaved buffer", TIMEOUT, async () => {
  await withServer(async (session) => {
    const unsaved = `${ORIGINAL}UNSAVED = 1\n`;
    const uri = await session.open("app.py", unsaved);
    const { values, observer } = progressRecorder();
    const job = session.jobs.start(SERVER_COMMANDS.run, { prompt: "Translate the greeting to French", uri }, "Claude: translate", observer);
    const outcome = await job.done;
    assert.equal(outcome.kind, "ok", JSON.stringify(outcome));
    const result = resultOf<JobResult & { changes: { path: string; status: string }[] }>(outcome);
    assert.equal(result.jobId, job.jobId);
    assert.equal(result.proposalId, job.jobId);
    assert.deepEqual(result.changes.map((c) => [c.path, c.status]), [["app.py", "modified"]]);

    assert.deepEqual(session.createdTokens, [], "the server used the client's token instead of creating one");
    assert.equal(values[0]?.kind, "begin");
    assert.equal(values.at(-1)?.kind, "end");
    assert.match(String(values.at(-1)?.message), /^done/);
    assert.ok(values.some((v) => v.kind === "report" && /running/.test(v.message ?? "")), JSON.stringify(values));

    const events = session.eventsOf(job.jobId);
    assert.deepEqual(events[0], { type: "status", phase: "queued", message: events[0]?.type === "status" ? events[0].message : "", logLine: null });
    assert.equal(events.at(-1)?.type, "result");
    assert.ok(kinds(events).indexOf("changes") < kinds(events).indexOf("result"));
    assert.ok(events.some((e) => e.type === "tool-use" && /sed/.test(e.summary ?? "")), JSON.stringify(kinds(events)));
    const init = events.find((e) => e.type === "init") as { cwd?: string } | undefined;
    if (testSettings().docker === false) {
      assert.match(init?.cwd ?? "", /snapshots/, "natively, claude works in a private snapshot");
    } else {
      assert.equal(init?.cwd, "/workspace", "claude ran inside the sandbox");
    }
    const formatter = new TranscriptFormatter();
    const transcript = events.map((event) => formatter.format(job.jobId, event)).join("");
    assert.match(transcript, /▸ .*sed/);
    assert.match(transcript, /✓ done — [0-9.]+ s · 2 turns/);

    await session.waitFor(() => session.edits.length === 1, "the proposal's workspace/applyEdit");
    const [{ params, answer }] = session.edits as [(typeof session.edits)[0]];
    assert.deepEqual(answer, { applied: true });
    assert.match(params.label ?? "", /^Claude: Translate the greeting/);
    const annotation = params.edit.changeAnnotations?.[`channelcoder:${job.jobId}`];
    assert.equal(annotation?.needsConfirmation, true, "VS Code shows its refactor preview");
    assert.equal(session.text(uri), `GREETING = 'bonjour'\nUNSAVED = 1\n`, "Claude's change lands in the buffer, the unsaved line kept");
    assert.equal(readFileSync(path.join(session.workspace, "app.py"), "utf8"), ORIGINAL, "nothing on disk was touched");

    const listed = await session.jobs.execute(SERVER_COMMANDS.jobs);
    assert.equal(listed.kind, "ok");
    const listing = resultOf<{ jobs: { jobId: string; state: string }[]; proposals: unknown[] }>(listed);
    assert.equal(listing.jobs.find((j) => j.jobId === job.jobId)?.state, "succeeded");
    assert.deepEqual(listing.proposals, [], "an applied proposal is done");
  });
});

test("hostrun: a git hook and the Makefile are flagged as running on your machine in the reply, the preview, the warning and the transcript", TIMEOUT, async () => {
  await withServer(async (session) => {
    const uri = await session.open("app.py", ORIGINAL);
    const job = session.jobs.start(SERVER_COMMANDS.run, { prompt: "Add a lint hook", uri }, "Claude: lint hook");
    const outcome = await job.done;
    assert.equal(outcome.kind, "ok", JSON.stringify(outcome));
    const result = resultOf<{ changes: { path: string; runsOnHost?: string }[] }>(outcome);
    assert.deepEqual(Object.fromEntries(result.changes.map((c) => [c.path, c.runsOnHost ?? null])), {
      ".husky/pre-commit": "husky git hook",
      Makefile: "runs on `make`",
      "app.py": null,
    }, JSON.stringify(session.eventsOf(job.jobId).filter((e) => e.type === "tool-result" || e.type === "result")));

    await session.waitFor(() => session.edits.length === 1, "the proposal's workspace/applyEdit");
    const [{ params, answer }] = session.edits as [(typeof session.edits)[0]];
    assert.deepEqual(answer, { applied: true });
    const annotations = params.edit.changeAnnotations ?? {};
    const labelOf = (relative: string): string[] => {
      const ids = new Set<string>();
      for (const change of params.edit.documentChanges ?? []) {
        if ("textDocument" in change && change.textDocument.uri === session.uri(relative)) {
          change.edits.forEach((edit) => ids.add("annotationId" in edit ? String(edit.annotationId) : ""));
        }
      }
      return [...ids].map((id) => annotations[id]?.label ?? `(no annotation ${id})`);
    };
    assert.deepEqual(labelOf("Makefile"), ["⚠ Runs on your machine: Makefile (runs on `make`)"], "each hunk of the Makefile is flagged");
    assert.deepEqual(labelOf(".husky/pre-commit"), ["⚠ Runs on your machine: .husky/pre-commit (husky git hook)"]);
    assert.deepEqual(labelOf("app.py").map((label) => label.startsWith("Claude: ")), [true], "a plain file is not flagged");
    for (const [id, annotation] of Object.entries(annotations)) {
      assert.equal(annotation.needsConfirmation, true, `${id} is shown in the refactor preview`);
    }
    assert.equal(
      runsOnHostMessage(hostRunLabels(params)),
      "Claude: this proposal changes 2 files that run on your machine — .husky/pre-commit (husky git hook), Makefile (runs on `make`). Check them in the preview before you accept.",
    );
    assert.match(readFileSync(path.join(session.workspace, "Makefile"), "utf8"), /lint:/, "accepted, the Makefile changes");

    const formatter = new TranscriptFormatter();
    const transcript = session.eventsOf(job.jobId).map((event) => formatter.format(job.jobId, event)).join("");
    assert.match(transcript, /⚠ runs on your machine: \.husky\/pre-commit \(husky git hook\), Makefile \(runs on `make`\) — review before you run it/);
  });
});

test("cancel: the progress cancel stops a running job; the reply says cancelled and no error is shown", TIMEOUT, async () => {
  await withServer(async (session) => {
    const uri = await session.open("app.py", ORIGINAL);
    const { values, observer } = progressRecorder();
    const job = session.jobs.start(SERVER_COMMANDS.run, { prompt: "Think for a long time", uri }, "Claude: slow", observer);
    await session.waitFor(() => session.eventsOf(job.jobId).some((e) => e.type === "init"), "claude to start");
    const cancelledAt = Date.now();
    await job.cancel();
    const outcome = await job.done;
    const seconds = (Date.now() - cancelledAt) / 1000;
    assert.equal(outcome.kind, "cancelled", JSON.stringify(outcome));
    assert.ok(seconds < 10, `cancel took ${seconds} s`);
    assert.equal(values.at(-1)?.kind, "end");
    assert.match(String(values.at(-1)?.message), /cancel/);
    assert.equal(session.eventsOf(job.jobId).at(-1)?.type, "error");
    assert.deepEqual(session.messages.filter((m) => m.type === 1), [], "a cancel is not an error message");
    assert.equal(session.edits.length, 0);
    console.log(`cancel-seconds ${seconds.toFixed(2)}`);
  });
});

test("reject: a proposal declined in the preview asks for a reason, which becomes the session's next turn", TIMEOUT, async () => {
  await withServer(async (session) => {
    session.preview = "decline";
    const uri = await session.open("app.py", ORIGINAL);
    const job = session.jobs.start(SERVER_COMMANDS.run, { prompt: "Translate the greeting to French", uri }, "Claude: translate");
    assert.equal((await job.done).kind, "ok");
    await session.waitFor(() => session.declined.length === 1, "the declined proposal");
    assert.equal(session.declined[0]?.jobId, job.jobId);
    assert.deepEqual(session.edits[0]?.answer, { applied: false, failureReason: "declined in the editor's preview" });
    assert.equal(session.text(uri), ORIGINAL);

    const { values, observer } = progressRecorder();
    const follow = session.jobs.start(SERVER_COMMANDS.rejectProposal, { jobId: job.jobId, reason: "keep the English greeting" }, "Claude: follow-up", observer);
    const outcome = await follow.done;
    assert.equal(outcome.kind, "ok", JSON.stringify(outcome));
    const reply = resultOf<{ rejected: boolean; nextJobId: string }>(outcome);
    assert.equal(reply.rejected, true);
    assert.ok(reply.nextJobId);
    assert.equal(values[0]?.kind, "begin", "the follow-up reports on the token the client passed");
    assert.equal(values.at(-1)?.kind, "end");
    const events = session.eventsOf(reply.nextJobId);
    assert.equal(events.at(-1)?.type, "result");
    const result = events.at(-1) as { ok: boolean; text?: string };
    assert.equal(result.ok, true);
    assert.match(result.text ?? "", /keeping/);
    const listing = resultOf<{ proposals: { jobId: string }[] }>(await session.jobs.execute(SERVER_COMMANDS.jobs));
    assert.ok(!listing.proposals.some((p) => p.jobId === job.jobId), "the rejected proposal is gone");
  });
});

test("stale: a buffer edited during the job refuses the proposal; applyProposal re-offers it on the new text", TIMEOUT, async () => {
  await withServer(async (session) => {
    const uri = await session.open("app.py", ORIGINAL);
    const job = session.jobs.start(SERVER_COMMANDS.run, { prompt: "Translate the greeting to French", uri }, "Claude: translate");
    await session.waitFor(() => session.eventsOf(job.jobId).some((e) => e.type === "init"), "claude to start");
    const edited = `${ORIGINAL}TYPED = 'while Claude worked'\n`;
    await session.change(uri, edited);
    assert.equal((await job.done).kind, "ok");
    await session.waitFor(() => session.edits.length === 1, "the first applyEdit");
    assert.equal(session.edits[0]?.answer.applied, false);
    assert.match(session.edits[0]?.answer.failureReason ?? "", /app\.py changed since the job started/);
    assert.equal(session.text(uri), edited, "the user's typing is not clobbered");
    assert.equal(session.declined.length, 0, "a stale edit is not a rejection");

    const again = await session.jobs.execute(SERVER_COMMANDS.applyProposal, { jobId: job.jobId });
    assert.equal(again.kind, "ok", JSON.stringify(again));
    assert.equal(resultOf<{ applied: boolean }>(again).applied, true);
    assert.equal(session.edits.length, 2);
    assert.equal(session.text(uri), "GREETING = 'bonjour'\nTYPED = 'while Claude worked'\n");
  });
});

test("failure: a failed job and a bad argument both reach the user with their hint", TIMEOUT, async () => {
  await withServer(async (session) => {
    const uri = await session.open("app.py", ORIGINAL);
    const job = session.jobs.start(SERVER_COMMANDS.run, { prompt: "Hello", uri }, "Claude: hello");
    const outcome = await job.done;
    assert.equal(outcome.kind, "failed", JSON.stringify(outcome));
    assert.ok(outcome.kind === "failed" && outcome.result !== undefined, "a failed job replies with its result (the server shows the error)");
    await session.waitFor(() => session.messages.some((m) => m.type === 1), "the server's error message");
    const shown = session.messages.filter((m) => m.type === 1);
    assert.equal(shown.length, 1);
    assert.match(shown[0]?.message ?? "", /^Claude job failed: /);

    const bad = await session.jobs.start(SERVER_COMMANDS.run, { uri }, "Claude: nothing").done;
    assert.equal(bad.kind, "failed");
    assert.ok(bad.kind === "failed" && bad.result === undefined, "a JSON-RPC error: the client shows it");
    if (bad.kind === "failed") {
      assert.equal(bad.failure.message, "channelcoder.run needs a prompt");
      assert.match(bad.failure.hint ?? "", /prompt/);
    }
  });
});

test("ask: a read-only question gets its answer as a document and proposes nothing", TIMEOUT, async () => {
  await withServer(async (session) => {
    const uri = await session.open("app.py", ORIGINAL);
    const range = { start: { line: 0, character: 0 }, end: { line: 0, character: 18 } };
    const outcome = await session.jobs.start(SERVER_COMMANDS.ask, { uri, range }, "Claude: explain").done;
    assert.equal(outcome.kind, "ok", JSON.stringify(outcome));
    const result = resultOf<{ text: string; proposalId: string | null }>(outcome);
    assert.match(result.text, /greeting constant/);
    assert.equal(result.proposalId, null);
    await session.waitFor(() => session.shownDocuments.length === 1, "the answer document");
    assert.match(session.shownDocuments[0]?.uri ?? "", /\.md$/);
    assert.equal(session.edits.length, 0);
  });
});
