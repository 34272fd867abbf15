/** Rejecting a proposal: an optional reason, which the server turns into the session's next turn. */

import * as vscode from "vscode";

import { SERVER_COMMANDS } from "../ids";
import type { DeclinedProposal } from "../proposals";
import type { JobUi } from "./jobUi";

export const REASON_PROMPT =
  "Why reject Claude's proposal? Your reason becomes Claude's next turn; leave it empty to just discard it (Esc keeps it pending).";

/** Ask for the reason; Esc keeps the proposal pending, empty rejects it, text starts a follow-up. */
export async function rejectWithReason(jobUi: JobUi, proposal: DeclinedProposal): Promise<void> {
  const reason = await vscode.window.showInputBox({
    title: `Reject ${proposal.label}`,
    prompt: REASON_PROMPT,
    placeHolder: "e.g. keep the public API unchanged",
    ignoreFocusOut: true,
  });
  if (reason === undefined) {
    return;
  }
  const text = reason.trim();
  if (!text) {
    await jobUi.execute(SERVER_COMMANDS.rejectProposal, { jobId: proposal.jobId });
    return;
  }
  await jobUi.run(SERVER_COMMANDS.rejectProposal, { jobId: proposal.jobId, reason: text }, `Claude: ${shorten(text)}`);
}

function shorten(text: string): string {
  return text.length > 60 ? `${text.slice(0, 59)}…` : text;
}
