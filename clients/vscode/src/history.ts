/**
 * The jobs this window started, as the extension knows them — kept across server restarts, so a
 * job that was running when the server died is still listed (as lost) in the job list and the
 * status bar after the new server, which never heard of it, has started.
 */

export type JobState = "running" | "succeeded" | "failed" | "cancelled" | "lost";

export interface JobEntry {
  readonly jobId: string;
  readonly title: string;
  readonly startedAt: number;
  state: JobState;
  endedAt?: number;
}

const KEPT = 50;

export class JobHistory {
  private readonly entries = new Map<string, JobEntry>();
  private readonly listeners = new Set<() => void>();
  /** When the current server took over (0: the first one). */
  private serverSince = 0;

  started(jobId: string, title: string, now = Date.now()): void {
    this.entries.delete(jobId);
    this.entries.set(jobId, { jobId, title, startedAt: now, state: "running" });
    while (this.entries.size > KEPT) {
      this.entries.delete(this.entries.keys().next().value as string);
    }
    this.changed();
  }

  /** A job's end; a lost job stays lost (its late reply, if any, changes nothing). */
  ended(jobId: string, state: Exclude<JobState, "running">, now = Date.now()): void {
    const entry = this.entries.get(jobId);
    if (!entry || entry.state !== "running") {
      return;
    }
    entry.state = state;
    entry.endedAt = now;
    this.changed();
  }

  /** The server died: every running job is lost. Returns them. */
  loseRunning(now = Date.now()): JobEntry[] {
    this.serverSince = now;
    const lost = this.running();
    for (const entry of lost) {
      entry.state = "lost";
      entry.endedAt = now;
    }
    if (lost.length > 0) {
      this.changed();
    }
    return lost;
  }

  running(): JobEntry[] {
    return this.all().filter((entry) => entry.state === "running");
  }

  lost(): JobEntry[] {
    return this.all().filter((entry) => entry.state === "lost");
  }

  /** Jobs started before the current server (it knows nothing of them), newest first. */
  fromEarlierServers(): JobEntry[] {
    return this.all().filter((entry) => entry.startedAt <= this.serverSince && this.serverSince > 0);
  }

  get(jobId: string): JobEntry | undefined {
    return this.entries.get(jobId);
  }

  /** Newest first. */
  all(): JobEntry[] {
    return [...this.entries.values()].reverse();
  }

  onChange(listener: () => void): { dispose(): void } {
    this.listeners.add(listener);
    return { dispose: () => this.listeners.delete(listener) };
  }

  private changed(): void {
    for (const listener of [...this.listeners]) {
      listener();
    }
  }
}
