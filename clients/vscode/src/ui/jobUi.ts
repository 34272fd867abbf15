/**
 * Exactly one progress UI per job: a cancellable notification, driven by the job's own
 * client-chosen workDoneToken, whose Cancel button cancels the job on the server.
 */

import * as vscode from "vscode";

import type { JobResult } from "../events";
import { SERVER_COMMANDS } from "../ids";
import type { JobHistory } from "../history";
import { type CommandArgument, type JobClient, type Outcome, type RunningJob } from "../jobs";
import { showFailure } from "./messages";
import type { TranscriptChannel } from "./transcript";

export interface JobUiOptions {
  revealTranscript(): boolean;
  /** Where the jobs this window starts are recorded (kept across server restarts). */
  history?: JobHistory;
}

export class JobUi {
  constructor(
    private readonly jobs: JobClient,
    private readonly transcript: TranscriptChannel,
    private readonly options: JobUiOptions,
  ) {}

  /** Run a job command under a progress notification; resolves with the server's reply. */
  async run(command: string, argument: CommandArgument | undefined, title = titleFor(command, argument)): Promise<JobResult | undefined> {
    return vscode.window.withProgress(
      { location: vscode.ProgressLocation.Notification, title, cancellable: true },
      async (progress, cancellation) => {
        let percentage = 0;
        const job: RunningJob = this.jobs.start(command, argument, title, {
          progress: (value) => {
            if (value.kind === "end") {
              return;
            }
            const step: { message?: string; increment?: number } = {};
            if (value.message) {
              step.message = value.message;
            }
            if (typeof value.percentage === "number" && value.percentage > percentage) {
              step.increment = value.percentage - percentage;
              percentage = value.percentage;
            }
            progress.report(step);
          },
        });
        this.transcript.startJob(job.jobId, title, this.options.revealTranscript());
        this.options.history?.started(job.jobId, title);
        const subscription = cancellation.onCancellationRequested(() => {
          void job.cancel();
        });
        try {
          const outcome = await job.done;
          this.options.history?.ended(job.jobId, endState(outcome));
          return await settle(outcome);
        } finally {
          subscription.dispose();
        }
      },
    );
  }

  /** A server command that is not a job; its error is shown with the hint. */
  async execute(command: string, argument?: CommandArgument): Promise<JobResult | undefined> {
    return settle(await this.jobs.execute(command, argument));
  }
}

function endState(outcome: Outcome): "succeeded" | "failed" | "cancelled" | "lost" {
  return outcome.kind === "ok" ? "succeeded" : outcome.kind;
}

/**
 * The server already shows a failed job's error (`ok: false`) with `window/showMessage`; a
 * JSON-RPC error (bad arguments, a server fault) is shown here. A cancel is no error.
 */
async function settle(outcome: Outcome): Promise<JobResult | undefined> {
  switch (outcome.kind) {
    case "ok":
      return outcome.result;
    case "cancelled":
      return outcome.result;
    case "lost":
      // The extension already said the server stopped, and marked the job lost.
      return undefined;
    case "failed":
      if (outcome.result === undefined) {
        await showFailure(outcome.failure);
      }
      return outcome.result;
  }
}

export function titleFor(command: string, argument: CommandArgument | undefined): string {
  const prompt = typeof argument?.prompt === "string" ? argument.prompt.trim() : "";
  const shortPrompt = prompt.length > 60 ? `${prompt.slice(0, 59)}…` : prompt;
  switch (command) {
    case SERVER_COMMANDS.ask:
      return `Claude: ${shortPrompt || "explain"}`;
    case SERVER_COMMANDS.fix: {
      const diagnostic = argument?.diagnostic as { message?: unknown } | undefined;
      const message = typeof diagnostic?.message === "string" ? diagnostic.message.split("\n", 1)[0] ?? "" : "";
      return `Claude: fix ${message.length > 60 ? `${message.slice(0, 59)}…` : message}`.trimEnd();
    }
    case SERVER_COMMANDS.buildImage:
      return "Claude: build sandbox image";
    case SERVER_COMMANDS.rejectProposal:
      return "Claude: follow-up";
    default:
      if (typeof argument?.promptFile === "string") {
        return `Claude: ${argument.promptFile}`;
      }
      return `Claude: ${shortPrompt || "run"}`;
  }
}
