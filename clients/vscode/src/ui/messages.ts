/** Server errors reach the user as one notification, with the hint (never swallowed). */

import * as vscode from "vscode";

import type { Failure } from "../events";
import { CLIENT_COMMANDS } from "../ids";

const SHOW_TRANSCRIPT = "Show transcript";

export async function showFailure(failure: Failure, context = "Claude"): Promise<void> {
  const text = `${context}: ${failure.message}${failure.hint ? ` — ${failure.hint}` : ""}`;
  const choice = await vscode.window.showErrorMessage(text, SHOW_TRANSCRIPT);
  if (choice === SHOW_TRANSCRIPT) {
    await vscode.commands.executeCommand(CLIENT_COMMANDS.showTranscript);
  }
}
