/**
 * One status bar item for Claude's jobs: how many run, or how many were lost when the server
 * died (until the next job starts). Hidden when there is nothing to say; a click lists the jobs.
 */

import * as vscode from "vscode";

import type { JobHistory } from "../history";
import { CLIENT_COMMANDS } from "../ids";

export class JobStatusBar implements vscode.Disposable {
  private readonly item: vscode.StatusBarItem;
  private readonly subscription: { dispose(): void };
  private lostShownSince = 0;

  constructor(private readonly history: JobHistory) {
    this.item = vscode.window.createStatusBarItem("channelcoder.jobs", vscode.StatusBarAlignment.Left, 10);
    this.item.name = "Claude jobs";
    this.item.command = CLIENT_COMMANDS.jobs;
    this.subscription = history.onChange(() => this.update());
    this.update();
  }

  private update(): void {
    const running = this.history.running();
    const newest = running[0];
    if (newest) {
      this.lostShownSince = newest.startedAt;
      this.item.text = `$(sync~spin) Claude: ${running.length === 1 ? "1 job running" : `${running.length} jobs running`}`;
      this.item.tooltip = running.map((entry) => entry.title).join("\n");
      this.item.backgroundColor = undefined;
      this.show();
      return;
    }
    const lost = this.history.lost().filter((entry) => entry.startedAt >= this.lostShownSince);
    if (lost.length > 0) {
      this.item.text = `$(warning) Claude: ${lost.length === 1 ? "1 job lost" : `${lost.length} jobs lost`}`;
      this.item.tooltip = `The language server stopped while ${lost.length === 1 ? "this job was" : "these jobs were"} running:\n${lost.map((entry) => entry.title).join("\n")}`;
      this.item.backgroundColor = new vscode.ThemeColor("statusBarItem.warningBackground");
      this.show();
      return;
    }
    this.item.hide();
  }

  private show(): void {
    this.item.show();
  }

  dispose(): void {
    this.subscription.dispose();
    this.item.dispose();
  }
}
