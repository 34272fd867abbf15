/**
 * A scripted language-client connection for unit tests: records what the extension sends and
 * lets the test answer requests, emit `$/progress` and `channelcoder/event`. The protocol test
 * (test/protocol/) replaces it with the real server.
 */

import type { LanguageClientOptions } from "vscode-languageclient/node";
import type { CancellationToken, ProgressType } from "vscode-languageserver-protocol";

import type { ManagedClient } from "../../src/extension";
import type { Disposable } from "../../src/rpc";

export interface SentRequest {
  method: string;
  params: { command?: string; arguments?: unknown[]; workDoneToken?: string | number; [key: string]: unknown };
  token: CancellationToken | undefined;
  resolve(value: unknown): void;
  reject(error: unknown): void;
}

export class FakeClient implements ManagedClient {
  readonly requests: SentRequest[] = [];
  readonly notifications: { method: string; params: unknown }[] = [];
  started = false;
  stopped = false;
  startError: Error | undefined;
  /** Answer requests at once; return undefined to leave a request pending. */
  autoAnswer: ((request: SentRequest) => unknown) | undefined;
  private readonly notificationHandlers = new Map<string, ((params: unknown) => void)[]>();
  private readonly progressHandlers = new Map<string | number, ((value: unknown) => void)[]>();
  private waiters: { predicate: (r: SentRequest) => boolean; resolve: (r: SentRequest) => void }[] = [];

  constructor(readonly options: LanguageClientOptions) {}

  async start(): Promise<void> {
    if (this.startError) {
      throw this.startError;
    }
    this.started = true;
  }

  /** Like vscode-languageclient: stopping a client that never started throws. */
  async stop(): Promise<void> {
    if (!this.started) {
      throw new Error("Client is not running and can't be stopped. It's current state is: startFailed");
    }
    this.stopped = true;
  }

  sendRequest<R>(method: string, params: unknown, token?: CancellationToken): Promise<R> {
    return new Promise<R>((resolve, reject) => {
      const request: SentRequest = {
        method,
        params: params as SentRequest["params"],
        token,
        resolve: resolve as (value: unknown) => void,
        reject,
      };
      this.requests.push(request);
      for (const waiter of this.waiters.filter((w) => w.predicate(request))) {
        waiter.resolve(request);
      }
      this.waiters = this.waiters.filter((w) => !w.predicate(request));
      const answer = this.autoAnswer?.(request);
      if (answer !== undefined) {
        resolve(answer as R);
      }
    });
  }

  async sendNotification(method: string, params: unknown): Promise<void> {
    this.notifications.push({ method, params });
  }

  onNotification(method: string, handler: (params: unknown) => void): Disposable {
    const list = this.notificationHandlers.get(method) ?? [];
    list.push(handler);
    this.notificationHandlers.set(method, list);
    return { dispose: () => list.splice(list.indexOf(handler), 1) };
  }

  onProgress<P>(_type: ProgressType<P>, token: string | number, handler: (params: P) => void): Disposable {
    const list = this.progressHandlers.get(token) ?? [];
    const wrapped = handler as (value: unknown) => void;
    list.push(wrapped);
    this.progressHandlers.set(token, list);
    return { dispose: () => list.splice(list.indexOf(wrapped), 1) };
  }

  /** The server side: a notification to the client. */
  notify(method: string, params: unknown): void {
    for (const handler of this.notificationHandlers.get(method) ?? []) {
      handler(params);
    }
  }

  /** The server side: `$/progress` on a token. */
  progress(token: string | number, value: unknown): void {
    for (const handler of this.progressHandlers.get(token) ?? []) {
      handler(value);
    }
  }

  /** The next executeCommand request for `command` (already sent or still to come). */
  nextCommand(command: string): Promise<SentRequest> {
    const predicate = (r: SentRequest) => r.method === "workspace/executeCommand" && r.params.command === command && !this.claimed.has(r);
    const existing = this.requests.find(predicate);
    const found = existing
      ? Promise.resolve(existing)
      : new Promise<SentRequest>((resolve) => this.waiters.push({ predicate, resolve }));
    return found.then((request) => {
      this.claimed.add(request);
      return request;
    });
  }

  private readonly claimed = new Set<SentRequest>();
}
