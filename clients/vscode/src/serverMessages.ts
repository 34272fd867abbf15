/**
 * The server's `window/showMessage`, shown the way this extension wants rather than one
 * notification per message: settings problems arrive one message each (and again after a
 * change), so they are grouped into one notification and each is shown once per session; a
 * message repeating a reason the extension already told the user about (a stale proposal) is
 * left out, and a proposal not offered because files changed on disk is said in the
 * extension's words; anything else is shown as it came.
 */

import { MessageType, type ShowMessageParams } from "vscode-languageserver-protocol";

export interface MessageSink {
  show(type: number, text: string, ...actions: string[]): Thenable<string | undefined>;
  openSettings(): Thenable<unknown>;
  /** The server did not offer a proposal because files changed on disk since its job started:
   * the extension says so in its own words (the server's names a command id). */
  staleOffer?(jobId: string, files: string[]): void;
}

export const OPEN_SETTINGS = "Open settings";
const GROUP_MS = 400;
const SETTINGS_PROBLEM = /^channelcoder: (unknown option|unknown setting|setting '|channelcoder settings from|the editor settings)/;
const NOT_OFFERED = /^Claude's proposal \(([^)\s]+)\) was not offered: (.+?) changed since the job started/;

export class ServerMessages {
  private readonly told = new Set<string>();
  private readonly seenProblems = new Set<string>();
  private pending: string[] = [];
  private timer: NodeJS.Timeout | undefined;

  constructor(private readonly sink: MessageSink) {}

  /** Leave out server messages that contain `reason` (the user has been told already). */
  quiet(reason: string): void {
    this.told.add(reason);
  }

  received(params: ShowMessageParams): void {
    const text = params.message;
    if ([...this.told].some((reason) => text.includes(reason))) {
      return;
    }
    const stale = NOT_OFFERED.exec(text);
    if (stale?.[1] && stale[2] && this.sink.staleOffer) {
      this.sink.staleOffer(stale[1], stale[2].split(", "));
      return;
    }
    if (SETTINGS_PROBLEM.test(text)) {
      if (!this.seenProblems.has(text)) {
        this.seenProblems.add(text);
        this.pending.push(text.replace(/^channelcoder: /, ""));
        this.timer ??= setTimeout(() => this.flush(), GROUP_MS);
      }
      return;
    }
    void this.sink.show(params.type, text);
  }

  /** Show the grouped settings problems now (the timer does this on its own). */
  flush(): void {
    clearTimeout(this.timer);
    this.timer = undefined;
    const problems = this.pending.splice(0);
    if (problems.length === 0) {
      return;
    }
    const text =
      problems.length === 1
        ? `Claude settings: ${problems[0]}`
        : `Claude settings: ${problems.length} problems — ${problems.map((problem, index) => `(${index + 1}) ${problem}`).join(" ")}`;
    void this.sink.show(MessageType.Warning, text, OPEN_SETTINGS).then((choice) => (choice === OPEN_SETTINGS ? this.sink.openSettings() : undefined));
  }
}
