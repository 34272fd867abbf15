import { strict as assert } from "node:assert";
import { test } from "node:test";

import type { ChannelEvent } from "../../src/events";
import { TranscriptFormatter } from "../../src/transcript";

function render(events: [string, ChannelEvent][]): string {
  const formatter = new TranscriptFormatter();
  return events.map(([jobId, event]) => formatter.format(jobId, event)).join("");
}

test("a whole text block that was not streamed is printed once; a streamed one is not repeated", () => {
  const text = render([
    ["a", { type: "text", text: "Plain answer", messageId: "m1" }],
    ["a", { type: "text-delta", text: "Stre", messageId: "m2" }],
    ["a", { type: "text-delta", text: "amed", messageId: "m2" }],
    ["a", { type: "text", text: "Streamed", messageId: "m2" }],
  ]);
  assert.equal(text, "── job a ──\nPlain answer\nStreamed\n");
});

test("build log lines, tool errors, changes, failures with hints and permission denials", () => {
  const text = render([
    ["a", { type: "status", phase: "building-image", message: "building", logLine: "Step 1/9 : FROM debian\n" }],
    ["a", { type: "tool-use", id: "t", name: "Bash", summary: "$ pytest -q" }],
    ["a", { type: "tool-result", toolUseId: "t", isError: true, output: "1 failed\nmore" }],
    ["a", { type: "tool-result", toolUseId: "t", isError: false, output: "ok" }],
    ["a", { type: "changes", files: [{ path: "app.py", status: "modified" }, { path: "new.py", status: "added" }] }],
    ["a", { type: "result", ok: false, error: "max turns", hint: "raise maxTurns", permissionDenials: [{ toolName: "Bash", hint: "allow it with tools" }] }],
    ["a", { type: "error", code: "docker-unavailable", message: "no engine", hint: "start Docker" }],
  ]);
  assert.equal(
    text,
    [
      "── job a ──",
      "  │ Step 1/9 : FROM debian",
      "▸ $ pytest -q",
      "  ✗ 1 failed",
      "changed: M app.py, A new.py",
      "✗ failed: max turns",
      "  hint: raise maxTurns",
      "  denied: Bash (allow it with tools)",
      "✗ no engine",
      "  hint: start Docker",
      "",
    ].join("\n"),
  );
});

test("interleaved jobs are told apart", () => {
  const text = render([
    ["job-one-123456789", { type: "text-delta", text: "one" }],
    ["job-two-123456789", { type: "text-delta", text: "two" }],
    ["job-one-123456789", { type: "result", ok: true }],
  ]);
  assert.equal(text, "── job job-one- ──\none\n── job job-two- ──\ntwo\n── job job-one- ──\n✓ done\n");
});

test("the footer lists the files that run on your machine, with what runs them", () => {
  const text = render([
    ["a", { type: "result", ok: true, runsOnHost: [{ path: ".husky/pre-commit", reason: "husky git hook" }, { path: "Makefile", reason: "runs on `make`" }] }],
    ["a", { type: "result", ok: true, runsOnHost: [] }],
  ]);
  assert.equal(
    text,
    "── job a ──\n✓ done\n⚠ runs on your machine: .husky/pre-commit (husky git hook), Makefile (runs on `make`) — review before you run it\n✓ done\n",
  );
});
