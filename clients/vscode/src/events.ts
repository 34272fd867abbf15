/**
 * The wire shape of `channelcoder/event {jobId, event}` (docs/lsp.md: the server's event
 * dataclasses' `to_json()`, camelCase plus `type`) and of command results and failures.
 */

export interface StatusEvent { type: "status"; phase: string; message?: string; logLine?: string | null }
export interface InitEvent { type: "init"; sessionId: string; model?: string; claudeVersion?: string; cwd?: string }
export interface TextDeltaEvent { type: "text-delta"; text: string; messageId?: string }
export interface TextEvent { type: "text"; text: string; messageId?: string; streamed?: boolean }
export interface ToolUseEvent { type: "tool-use"; id: string; name: string; summary?: string; subagent?: boolean }
export interface ToolResultEvent { type: "tool-result"; toolUseId: string; isError?: boolean; output?: string }
export interface PermissionDenial { toolName: string; hint?: string }
/** A file the job changed that your machine runs later (a git hook, a Makefile…) and what runs it. */
export interface HostRunChange { path: string; reason: string }
export interface ResultEvent {
  type: "result";
  ok: boolean;
  text?: string;
  sessionId?: string;
  costUsd?: number;
  durationMs?: number;
  numTurns?: number;
  error?: string | null;
  hint?: string;
  permissionDenials?: PermissionDenial[];
  runsOnHost?: HostRunChange[];
}
export interface FileChange { path: string; status: string; oldPath?: string | null; binary?: boolean; modeChanged?: boolean }
export interface ChangesEvent { type: "changes"; files: FileChange[]; diff?: string }
export interface ErrorEvent { type: "error"; code: string; message: string; hint?: string }
export interface NetworkBlockedEvent { type: "networkBlocked"; host: string; port: number; reason: string }
export interface SecurityEvent { type: "security"; path: string; change: string; outcome: string }

export type ChannelEvent =
  | StatusEvent
  | InitEvent
  | TextDeltaEvent
  | TextEvent
  | ToolUseEvent
  | ToolResultEvent
  | ResultEvent
  | ChangesEvent
  | SecurityEvent
  | NetworkBlockedEvent
  | ErrorEvent;

export interface EventNotification {
  jobId: string;
  event: ChannelEvent;
}

/** What `channelcoder.run` / `ask` / `fix` answer (docs/lsp.md §2); extra keys are kept. */
export interface JobResult {
  jobId?: string;
  proposalId?: string;
  ok?: boolean;
  text?: string;
  sessionId?: string;
  costUsd?: number;
  durationMs?: number;
  changes?: unknown;
  error?: string | null | { message?: string; hint?: string; code?: string };
  hint?: string;
  [key: string]: unknown;
}

/** Something that went wrong, as the user should read it. */
export interface Failure {
  message: string;
  hint?: string;
  code?: string | number;
}

export function isEventNotification(value: unknown): value is EventNotification {
  if (typeof value !== "object" || value === null) {
    return false;
  }
  const candidate = value as { jobId?: unknown; event?: unknown };
  return (
    typeof candidate.jobId === "string" &&
    typeof candidate.event === "object" &&
    candidate.event !== null &&
    typeof (candidate.event as { type?: unknown }).type === "string"
  );
}
