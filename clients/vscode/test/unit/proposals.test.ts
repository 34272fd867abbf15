import { strict as assert } from "node:assert";
import { test } from "node:test";

import type { ApplyWorkspaceEditParams, ApplyWorkspaceEditResult } from "vscode-languageserver-protocol";

import { activate, settle } from "../helpers/harness";
import { Uri, state } from "../helpers/vscode-stub";
import { SERVER_COMMANDS } from "../../src/ids";

function proposal(jobId: string, version: number | null): ApplyWorkspaceEditParams {
  return {
    label: "Claude: rename greeting",
    edit: {
      documentChanges: [
        {
          textDocument: { uri: "file:///ws/app.py", version },
          edits: [{ range: { start: { line: 0, character: 0 }, end: { line: 0, character: 8 } }, newText: "SALUTE", annotationId: `channelcoder:${jobId}` }],
        },
      ],
      changeAnnotations: {
        [`channelcoder:${jobId}`]: { label: "Claude: rename greeting", needsConfirmation: true, description: `proposed by job ${jobId}` },
      },
    },
  };
}

type ApplyEdit = (params: ApplyWorkspaceEditParams, next: (p: ApplyWorkspaceEditParams) => ApplyWorkspaceEditResult) => Promise<ApplyWorkspaceEditResult>;

async function applyEditHandler(): Promise<{ handle: ApplyEdit; client: Awaited<ReturnType<typeof activate>>["client"] }> {
  const { client } = await activate();
  const handle = client.options.middleware?.workspace?.handleApplyEdit as unknown as ApplyEdit;
  assert.ok(handle);
  return { handle, client };
}

test("an edit made for an older version of an open buffer is refused with the reason, never shown", async () => {
  const { handle } = await applyEditHandler();
  state.textDocuments.push({ uri: Uri.file("/ws/app.py"), version: 5 });
  let previewed = false;
  const answer = await handle(proposal("j1", 4), () => {
    previewed = true;
    return { applied: true };
  });
  assert.equal(previewed, false);
  assert.equal(answer.applied, false);
  assert.match(answer.failureReason ?? "", /app\.py changed since the job started/);
  await settle();
  assert.equal(state.inputBoxes.length, 0, "a stale edit is not a rejection");
});

test("a stale proposal is one short notification whose button re-offers it; the server's own note of it is left out", async () => {
  const { handle, client } = await applyEditHandler();
  state.textDocuments.push({ uri: Uri.file("/ws/app.py"), version: 5 });
  state.messageAnswers.push("Review again");
  const answer = await handle(proposal("j7", 4), () => ({ applied: true }));
  client.notify("window/showMessage", { type: 2, message: `Claude's proposal (j7) was not applied (${answer.failureReason}). It is kept: run 'Apply proposal' (channelcoder.applyProposal) to re-offer it.` });
  await settle();
  assert.equal(state.messages.length, 1, JSON.stringify(state.messages));
  assert.equal(state.messages[0]?.level, "info", "not an error: nothing is lost");
  assert.equal(state.messages[0]?.text, "Claude: app.py changed while Claude worked, so its proposal was not applied. It is kept.");
  assert.deepEqual(state.messages[0]?.actions, ["Review again"]);
  const reoffer = await client.nextCommand(SERVER_COMMANDS.applyProposal);
  assert.deepEqual(reoffer.params.arguments, [{ jobId: "j7" }]);
});

test("an accepted preview applies; nothing else is asked", async () => {
  const { handle } = await applyEditHandler();
  state.textDocuments.push({ uri: Uri.file("/ws/app.py"), version: 4 });
  const answer = await handle(proposal("j1", 4), () => ({ applied: true }));
  assert.deepEqual(answer, { applied: true });
  await settle();
  assert.equal(state.inputBoxes.length, 0);
});

test("declining the preview answers the server first, then asks why; the reason becomes the next turn", async () => {
  const { handle, client } = await applyEditHandler();
  let answered = false;
  state.inputAnswers.push(() => {
    assert.ok(answered, "the applyEdit answer must not wait for the user");
    return "keep the old name";
  });
  const answer = await handle(proposal("job-7", null), () => ({ applied: false }));
  answered = true;
  assert.deepEqual(answer, { applied: false, failureReason: "declined in the editor's preview" });

  const request = await client.nextCommand(SERVER_COMMANDS.rejectProposal);
  assert.deepEqual(request.params.arguments, [{ jobId: "job-7", reason: "keep the old name" }]);
  assert.match(String(state.inputBoxes[0]?.prompt), /reason becomes Claude's next turn/);
  const token = request.params.workDoneToken as string;
  assert.ok(token);
  request.resolve({ jobId: "job-7", rejected: true, nextJobId: "job-8" });
  await settle();
  assert.equal(state.progress[0]?.finished, false, "the follow-up job keeps the notification open");
  client.progress(token, { kind: "begin", title: "Claude: keep the old name", cancellable: true });
  client.progress(token, { kind: "end", message: "done in 2.0 s" });
  await settle();
  assert.equal(state.progress[0]?.finished, true);
});

test("declining with an empty reason just rejects; Esc keeps the proposal pending", async () => {
  const { handle, client } = await applyEditHandler();
  state.inputAnswers.push("");
  await handle(proposal("j2", null), () => ({ applied: false }));
  const request = await client.nextCommand(SERVER_COMMANDS.rejectProposal);
  assert.deepEqual(request.params.arguments, [{ jobId: "j2" }]);
  assert.equal(request.params.workDoneToken, undefined);
  assert.equal(state.progress.length, 0);

  state.inputAnswers.push(undefined);
  await handle(proposal("j3", null), () => ({ applied: false }));
  await settle();
  assert.equal(client.requests.filter((r) => r.params.command === SERVER_COMMANDS.rejectProposal).length, 1);
});

test("edits that are not proposals pass through untouched", async () => {
  const { handle } = await applyEditHandler();
  const plain: ApplyWorkspaceEditParams = { edit: { changes: {} } };
  const answer = await handle(plain, () => ({ applied: false, failureReason: "x" }));
  assert.deepEqual(answer, { applied: false, failureReason: "x" });
  await settle();
  assert.equal(state.inputBoxes.length, 0);
});

test("a proposal that changes files your machine runs warns beside the preview, naming each file", async () => {
  const { handle } = await applyEditHandler();
  const params = proposal("j1", null);
  params.edit.documentChanges?.push({
    textDocument: { uri: "file:///ws/Makefile", version: null },
    edits: [{ range: { start: { line: 1, character: 0 }, end: { line: 1, character: 0 } }, newText: "lint:\n", annotationId: "channelcoder-hostrun:j1:0" }],
  });
  params.edit.changeAnnotations = {
    ...params.edit.changeAnnotations,
    "channelcoder-hostrun:j1:0": { label: "⚠ Runs on your machine: Makefile (runs on `make`)", needsConfirmation: true },
  };
  const answer = await handle(params, () => ({ applied: true }));
  assert.deepEqual(answer, { applied: true });
  const warnings = state.messages.filter((m) => m.level === "warning");
  assert.equal(warnings.length, 1, JSON.stringify(state.messages));
  assert.match(warnings[0]?.text ?? "", /changes a file that runs on your machine — Makefile \(runs on `make`\)\. Check them in the preview/);

  state.messages.length = 0;
  await handle(proposal("j2", null), () => ({ applied: true }));
  assert.equal(state.messages.filter((m) => m.level === "warning").length, 0, "a plain proposal warns of nothing");
});

test("a proposal the server did not offer (a closed file changed on disk) is the same short notification, not the server's", async () => {
  const { client } = await activate();
  state.messageAnswers.push("Review again");
  client.notify("window/showMessage", {
    type: 2,
    message: "Claude's proposal (j9) was not offered: app.py, lib/util.py changed since the job started. Run 'Apply proposal' (channelcoder.applyProposal) to get it rebased on your current text.",
  });
  await settle();
  assert.equal(state.messages.length, 1, JSON.stringify(state.messages));
  assert.equal(state.messages[0]?.text, "Claude: app.py, lib/util.py changed while Claude worked, so its proposal was not applied. It is kept.");
  const reoffer = await client.nextCommand(SERVER_COMMANDS.applyProposal);
  assert.deepEqual(reoffer.params.arguments, [{ jobId: "j9" }]);
});
