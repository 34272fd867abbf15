/** How often a crashed server is restarted: at most `limit` times within `windowMinutes`. */

export class RestartBudget {
  private readonly times: number[] = [];

  constructor(
    readonly limit = 3,
    readonly windowMinutes = 3,
    private readonly now: () => number = Date.now,
  ) {}

  /** The number of this restart (1…limit), or undefined when the budget is spent. */
  take(): number | undefined {
    const now = this.now();
    while (this.times.length > 0 && (this.times[0] ?? 0) < now - this.windowMinutes * 60_000) {
      this.times.shift();
    }
    if (this.times.length >= this.limit) {
      return undefined;
    }
    this.times.push(now);
    return this.times.length;
  }
}
