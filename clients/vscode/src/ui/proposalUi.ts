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

/**
 * After an applied proposal that kept conflicts (both versions between `<<<<<<<` and `>>>>>>>`),
 * open each such file at its first marker, where VS Code offers Accept Current / Incoming / Both.
 */
export async function revealConflicts(result: Record<string, unknown>): Promise<void> {
  if (result.applied !== true || !Array.isArray(result.conflicts)) {
    return;
  }
  for (const conflict of result.conflicts as { path?: unknown }[]) {
    if (typeof conflict.path !== "string") {
      continue;
    }
    for (const folder of vscode.workspace.workspaceFolders ?? []) {
      const uri = vscode.Uri.joinPath(folder.uri, conflict.path);
      let document: vscode.TextDocument;
      try {
        document = await vscode.workspace.openTextDocument(uri);
      } catch {
        continue;
      }
      const line = document.getText().split("\n").findIndex((text) => text.startsWith("<<<<<<<"));
      if (line < 0) {
        continue;
      }
      const editor = await vscode.window.showTextDocument(document, { preview: false });
      const at = new vscode.Range(line, 0, line, 0);
      editor.selection = new vscode.Selection(at.start, at.end);
      editor.revealRange(at, vscode.TextEditorRevealType.InCenterIfOutsideViewport);
      break;
    }
  }
}
