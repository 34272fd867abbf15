/**
 * Everything that can go wrong with a server command, turned into one `Failure` (message +
 * hint) the user reads in a notification: a JSON-RPC error (hint in `error.data.hint`), a result
 * with `ok: false`, or the job's own `error` event.
 */

import { LSPErrorCodes, ResponseError } from "vscode-languageserver-protocol";

import type { ErrorEvent, Failure, JobResult } from "./events";

export function failureFromError(error: unknown): Failure {
  if (error instanceof ResponseError) {
    const data = (typeof error.data === "object" && error.data !== null ? error.data : {}) as {
      hint?: unknown;
      code?: unknown;
    };
    const hint = typeof data.hint === "string" && data.hint ? data.hint : undefined;
    // The server also appends the hint to the message for clients that show only the message.
    const message = hint && error.message.endsWith(` (hint: ${hint})`) ? error.message.slice(0, -` (hint: ${hint})`.length) : error.message;
    const failure: Failure = { message, code: typeof data.code === "string" ? data.code : error.code };
    if (hint) {
      failure.hint = hint;
    }
    return failure;
  }
  if (error instanceof Error) {
    return { message: error.message };
  }
  return { message: String(error) };
}

/** A result that reports failure (`ok: false`), or undefined for a success. */
export function failureFromResult(result: JobResult | null | undefined, last?: ErrorEvent): Failure | undefined {
  if (!result || typeof result !== "object" || result.ok !== false) {
    return undefined;
  }
  const error = result.error;
  let message: string | undefined;
  let hint: string | undefined = typeof result.hint === "string" && result.hint ? result.hint : undefined;
  let code: string | undefined;
  if (typeof error === "string") {
    message = error;
  } else if (error && typeof error === "object") {
    message = error.message;
    hint = hint ?? error.hint;
    code = error.code;
  }
  const failure: Failure = { message: message || last?.message || (result.text ? String(result.text) : "the job failed") };
  const bestHint = hint || last?.hint;
  if (bestHint) {
    failure.hint = bestHint;
  }
  const bestCode = code ?? last?.code;
  if (bestCode) {
    failure.code = bestCode;
  }
  return failure;
}

export function isCancellation(failure: Failure): boolean {
  return failure.code === "cancelled" || failure.code === LSPErrorCodes.RequestCancelled;
}

export function describe(failure: Failure): string {
  return failure.hint ? `${failure.message} — ${failure.hint}` : failure.message;
}
