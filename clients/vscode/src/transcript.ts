/**
 * Turns the event stream into the live transcript text: streamed text as it comes, one line per
 * tool call, build log lines, and a footer with time, turns and cost. Pure: the caller appends
 * the returned text to an output channel (VS Code) or collects it (tests).
 */

import type { ChannelEvent, ResultEvent } from "./events";

export class TranscriptFormatter {
  private readonly streamedMessages = new Set<string>();
  private atLineStart = true;
  private lastJob: string | undefined;

  /** The header printed when a job starts. */
  start(jobId: string, title: string): string {
    this.lastJob = jobId;
    return this.emit(`${this.atLineStart ? "" : "\n"}━━ ${title} (job ${short(jobId)}) ━━\n`);
  }

  /** The line saying a job was lost with the server that ran it. */
  lost(jobId: string, title: string): string {
    this.lastJob = jobId;
    return this.emit(`${this.atLineStart ? "" : "\n"}✗ lost: the language server stopped while "${title}" (job ${short(jobId)}) was running\n`);
  }

  /** Text to append for one event of `jobId` ("" when the event shows nothing new). */
  format(jobId: string, event: ChannelEvent): string {
    let prefix = "";
    if (this.lastJob !== jobId) {
      prefix = `${this.atLineStart ? "" : "\n"}── job ${short(jobId)} ──\n`;
      this.atLineStart = true;
      this.lastJob = jobId;
    }
    const body = this.body(event);
    return body || prefix ? this.emit(prefix + body) : "";
  }

  private body(event: ChannelEvent): string {
    switch (event.type) {
      case "status":
        if (event.logLine) {
          return this.line(`  │ ${event.logLine.replace(/\s+$/, "")}`);
        }
        return this.line(`[${event.phase}]${event.message ? ` ${event.message}` : ""}`);
      case "init":
        return this.line(
          `session ${event.sessionId}${event.model ? ` · ${event.model}` : ""}${event.claudeVersion ? ` · claude ${event.claudeVersion}` : ""}`,
        );
      case "text-delta":
        if (event.messageId) {
          this.streamedMessages.add(event.messageId);
        }
        return event.text;
      case "text":
        if (event.streamed || (event.messageId && this.streamedMessages.has(event.messageId))) {
          return this.atLineStart ? "" : "\n";
        }
        return this.line(event.text);
      case "tool-use":
        return this.line(`▸ ${event.summary || event.name}${event.subagent ? " (sub-agent)" : ""}`);
      case "tool-result":
        if (event.isError) {
          return this.line(`  ✗ ${firstLine(event.output ?? "")}`);
        }
        return "";
      case "changes": {
        if (event.files.length === 0) {
          return this.line("no files changed");
        }
        const names = event.files.map((file) => `${file.status[0]?.toUpperCase() ?? "?"} ${file.path}`);
        return this.line(`changed: ${names.join(", ")}`);
      }
      case "networkBlocked":
        return this.line(`⊘ network: blocked ${event.host}:${event.port} (${event.reason})`);
      case "security":
        return this.line(`⚠ security: ${event.path}: ${event.change} (${event.outcome})`);
      case "result":
        return this.line(footer(event));
      case "error":
        return this.line(`✗ ${event.message}${event.hint ? `\n  hint: ${event.hint}` : ""}`);
      default:
        return "";
    }
  }

  private line(text: string): string {
    return `${this.atLineStart ? "" : "\n"}${text}\n`;
  }

  private emit(text: string): string {
    if (text) {
      this.atLineStart = text.endsWith("\n");
    }
    return text;
  }
}

export function footer(result: ResultEvent): string {
  const parts: string[] = [];
  if (result.durationMs !== undefined) {
    parts.push(`${(result.durationMs / 1000).toFixed(1)} s`);
  }
  if (result.numTurns !== undefined) {
    parts.push(`${result.numTurns} turn${result.numTurns === 1 ? "" : "s"}`);
  }
  if (result.costUsd !== undefined) {
    parts.push(`$${result.costUsd.toFixed(4)}`);
  }
  const head = result.ok ? "✓ done" : `✗ failed${result.error ? `: ${result.error}` : ""}`;
  const lines = [`${head}${parts.length ? ` — ${parts.join(" · ")}` : ""}`];
  if (!result.ok && result.hint) {
    lines.push(`  hint: ${result.hint}`);
  }
  for (const denial of result.permissionDenials ?? []) {
    lines.push(`  denied: ${denial.toolName}${denial.hint ? ` (${denial.hint})` : ""}`);
  }
  const hostRun = result.runsOnHost ?? [];
  if (hostRun.length > 0) {
    const listed = hostRun.map((change) => `${change.path} (${change.reason})`).join(", ");
    lines.push(`⚠ runs on your machine: ${listed} — review before you run it`);
  }
  return lines.join("\n");
}

export function short(jobId: string): string {
  return jobId.length > 8 ? jobId.slice(0, 8) : jobId;
}

function firstLine(text: string): string {
  const line = text.split("\n", 1)[0] ?? "";
  return line.length > 200 ? `${line.slice(0, 199)}…` : line;
}
