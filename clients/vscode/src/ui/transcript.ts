/** The live transcript: one output channel fed by `channelcoder/event`. */

import * as vscode from "vscode";

import type { EventNotification } from "../events";
import { TranscriptFormatter } from "../transcript";

export class TranscriptChannel implements vscode.Disposable {
  private readonly formatter = new TranscriptFormatter();

  constructor(private readonly channel: vscode.OutputChannel) {}

  /** A job this extension started: a header, and the channel revealed without taking focus. */
  startJob(jobId: string, title: string, reveal: boolean): void {
    this.channel.append(this.formatter.start(jobId, title));
    if (reveal) {
      this.channel.show(true);
    }
  }

  onEvent(notification: EventNotification): void {
    const text = this.formatter.format(notification.jobId, notification.event);
    if (text) {
      this.channel.append(text);
    }
  }

  /** The server died while these jobs ran. */
  lost(jobs: readonly { jobId: string; title: string }[]): void {
    for (const job of jobs) {
      this.channel.append(this.formatter.lost(job.jobId, job.title));
    }
  }

  show(): void {
    this.channel.show(true);
  }

  dispose(): void {
    this.channel.dispose();
  }
}
