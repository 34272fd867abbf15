/**
 * Running server commands as jobs the client can follow and cancel before the reply
 * (docs/lsp.md): the client picks the jobId and the workDoneToken, passes both with
 * `workspace/executeCommand`, listens to `$/progress` on that token and to
 * `channelcoder/event` for that jobId, and cancels with `window/workDoneProgress/cancel`.
 */

import { randomUUID } from "node:crypto";

import {
  CancellationTokenSource,
  ExecuteCommandRequest,
  WorkDoneProgress,
  WorkDoneProgressCancelNotification,
  type ExecuteCommandParams,
  type WorkDoneProgressBegin,
  type WorkDoneProgressEnd,
  type WorkDoneProgressReport,
} from "vscode-languageserver-protocol";

import { type ChannelEvent, type ErrorEvent, type EventNotification, type Failure, type JobResult, isEventNotification } from "./events";
import { failureFromError, failureFromResult, isCancellation } from "./failures";
import { CANCEL_BY_REQUEST, EVENT_NOTIFICATION, JOB_COMMANDS, SERVER_COMMANDS } from "./ids";
import type { Disposable, Rpc } from "./rpc";

export type ProgressValue = WorkDoneProgressBegin | WorkDoneProgressReport | WorkDoneProgressEnd;

export type Outcome =
  | { readonly kind: "ok"; readonly result: JobResult }
  | { readonly kind: "failed"; readonly failure: Failure; readonly result?: JobResult }
  | { readonly kind: "cancelled"; readonly failure: Failure; readonly result?: JobResult }
  /** The server died while the job ran: no reply will ever come. */
  | { readonly kind: "lost" };

export interface JobObserver {
  progress?(value: ProgressValue): void;
  event?(event: ChannelEvent): void;
}

export interface RunningJob {
  readonly jobId: string;
  readonly token: string;
  readonly command: string;
  readonly title: string;
  readonly done: Promise<Outcome>;
  cancel(): Promise<void>;
}

export type CommandArgument = Record<string, unknown>;

const FOLLOW_UP_END_GRACE_MS = 2000;

export class JobClient implements Disposable {
  private readonly running = new Map<string, Job>();
  /** jobIds whose stream has ended (`result` or `error` seen), newest last, bounded. */
  private readonly ended = new Set<string>();
  private readonly listeners = new Set<(notification: EventNotification) => void>();
  private readonly subscription: Disposable;

  constructor(
    private readonly rpc: Rpc,
    private readonly newId: () => string = randomUUID,
  ) {
    this.subscription = rpc.onNotification(EVENT_NOTIFICATION, (params) => this.dispatch(params));
  }

  /** Every event of every job (the transcript listens here). */
  onEvent(listener: (notification: EventNotification) => void): Disposable {
    this.listeners.add(listener);
    return { dispose: () => this.listeners.delete(listener) };
  }

  /** Start `command` as a job: fresh jobId and token unless the argument already names a jobId. */
  start(command: string, argument: CommandArgument | undefined, title: string, observer: JobObserver = {}): RunningJob {
    const given = argument?.jobId;
    // rejectProposal's jobId names the proposal; its follow-up job gets its id from the server.
    const ownId = command !== SERVER_COMMANDS.rejectProposal && typeof given === "string" && given ? given : this.newId();
    const sent = command === SERVER_COMMANDS.rejectProposal ? { ...(argument ?? {}) } : { ...(argument ?? {}), jobId: ownId };
    const job = new Job(this.rpc, command, sent, ownId, title, observer, {
      follow: (jobId) => {
        this.running.set(jobId, job);
        return this.ended.has(jobId);
      },
      forget: (jobIds) => jobIds.forEach((jobId) => this.running.delete(jobId)),
    });
    this.running.set(ownId, job);
    job.begin();
    return job;
  }

  /** A command that is not a job: plain request, failures turned into an Outcome. */
  async execute(command: string, argument?: CommandArgument): Promise<Outcome> {
    const params: ExecuteCommandParams = { command, arguments: argument === undefined ? [] : [argument] };
    try {
      const result = await this.rpc.sendRequest<JobResult>(ExecuteCommandRequest.method, params);
      return classify(result);
    } catch (error) {
      return rejected(error);
    }
  }

  /** The server is gone: every job still waiting for its reply ends as lost, at once. */
  loseAll(): string[] {
    const jobs = new Set(this.running.values());
    this.running.clear();
    for (const job of jobs) {
      job.lose();
    }
    return [...jobs].map((job) => job.jobId);
  }

  dispose(): void {
    this.subscription.dispose();
    this.listeners.clear();
  }

  private dispatch(params: unknown): void {
    if (!isEventNotification(params)) {
      return;
    }
    const { jobId, event } = params;
    if (event.type === "result" || event.type === "error") {
      this.ended.add(jobId);
      if (this.ended.size > 200) {
        this.ended.delete(this.ended.values().next().value as string);
      }
    }
    this.running.get(jobId)?.onEvent(jobId, event);
    for (const listener of [...this.listeners]) {
      listener(params);
    }
  }
}

export function isJobCommand(command: string): boolean {
  return JOB_COMMANDS.has(command);
}

interface JobRegistry {
  /** Route a follow-up job's events here; true when its stream already ended. */
  follow(jobId: string): boolean;
  forget(jobIds: string[]): void;
}

class Job implements RunningJob {
  readonly token: string;
  done!: Promise<Outcome>;
  private lastError: ErrorEvent | undefined;
  private progressSubscription: Disposable | undefined;
  private cancelRequested = false;
  private progressBegun = false;
  private progressEnded = false;
  private followUp: { jobId: string; ended: () => void } | undefined;
  private readonly request = new CancellationTokenSource();
  private markLost: () => void = () => undefined;

  constructor(
    private readonly rpc: Rpc,
    readonly command: string,
    private readonly argument: CommandArgument,
    readonly jobId: string,
    readonly title: string,
    private readonly observer: JobObserver,
    private readonly registry: JobRegistry,
  ) {
    this.token = `channelcoder-${jobId}`;
  }

  begin(): void {
    this.progressSubscription = this.rpc.onProgress(WorkDoneProgress.type, this.token, (value) => {
      this.observer.progress?.(value);
      if (value.kind === "begin") {
        this.progressBegun = true;
      }
      if (value.kind === "end") {
        this.progressEnded = true;
        this.followUp?.ended();
      }
    });
    const params: ExecuteCommandParams = {
      command: this.command,
      arguments: [this.argument],
      workDoneToken: this.token,
    };
    const followed: string[] = [this.jobId];
    const lost = new Promise<Outcome>((resolve) => {
      this.markLost = () => resolve({ kind: "lost" });
    });
    const replied = this.rpc
      .sendRequest<JobResult>(ExecuteCommandRequest.method, params, this.request.token)
      .then(
        async (result) => {
          const next = result && typeof result === "object" ? result.nextJobId : undefined;
          if (this.command === SERVER_COMMANDS.rejectProposal && typeof next === "string" && next) {
            followed.push(next);
            await this.awaitFollowUp(next);
          }
          return classify(result, this.lastError, this.cancelRequested);
        },
        (error: unknown) => rejected(error, this.cancelRequested),
      );
    this.done = Promise.race([replied, lost]).finally(() => {
      this.progressSubscription?.dispose();
      this.request.dispose();
      this.registry.forget(followed);
    });
  }

  lose(): void {
    this.followUp?.ended();
    this.markLost();
  }

  /** rejectProposal replies at once; its follow-up job runs on this token until its progress ends. */
  private awaitFollowUp(jobId: string): Promise<void> {
    return new Promise((resolve) => {
      this.followUp = { jobId, ended: resolve };
      if (this.registry.follow(jobId) || this.progressEnded) {
        resolve();
      }
    });
  }

  onEvent(jobId: string, event: ChannelEvent): void {
    if (event.type === "error" && jobId === this.jobId) {
      this.lastError = event;
    }
    this.observer.event?.(event);
    if ((event.type === "result" || event.type === "error") && jobId === this.followUp?.jobId) {
      // The progress end follows the last event; give it a moment so the UI shows it.
      const { ended } = this.followUp;
      if (this.progressBegun && !this.progressEnded) {
        setTimeout(ended, FOLLOW_UP_END_GRACE_MS);
      } else {
        ended();
      }
    }
  }

  async cancel(): Promise<void> {
    this.cancelRequested = true;
    if (CANCEL_BY_REQUEST.has(this.command)) {
      this.request.cancel();
      return;
    }
    await this.rpc.sendNotification(WorkDoneProgressCancelNotification.method, { token: this.token });
  }
}
function classify(result: JobResult, lastError?: ErrorEvent, cancelRequested = false): Outcome {
  const failure = failureFromResult(result, lastError);
  if (!failure) {
    return { kind: "ok", result: result ?? {} };
  }
  if (isCancellation(failure) || (cancelRequested && lastError?.code === "cancelled")) {
    return { kind: "cancelled", failure, result };
  }
  return { kind: "failed", failure, result };
}

function rejected(error: unknown, cancelRequested = false): Outcome {
  const failure = failureFromError(error);
  if (isCancellation(failure) || (cancelRequested && /cancel/i.test(failure.message))) {
    return { kind: "cancelled", failure };
  }
  return { kind: "failed", failure };
}
