/** Activate the real extension code against the vscode stub and a FakeClient. */

import "./install-vscode";

import type { ChannelcoderExtension, ExtensionDeps } from "../../src/extension";
import type { ServerLaunch, ServerMissing } from "../../src/discovery";
import { FakeClient } from "./fake-client";
import { reset, state } from "./vscode-stub";

// Loaded after the stub is installed.
const extension = require("../../src/extension") as typeof import("../../src/extension");

export interface Activated {
  ext: ChannelcoderExtension;
  client: FakeClient;
  launches: ServerLaunch[];
}

export const LAUNCH: ServerLaunch = { command: "/opt/channelcoder/bin/channelcoder", args: ["lsp"], source: "setting" };

export interface ActivateOptions {
  settings?: Record<string, unknown>;
  server?: ServerLaunch | ServerMissing;
  /** Discovery itself, given channelcoder.serverPath (instead of a fixed `server`). */
  findServer?: ExtensionDeps["findServer"];
  startError?: Error;
  /** Answers to file pickers opened while activating. */
  openDialogAnswers?: (import("./vscode-stub").Uri[] | undefined)[];
  /** Answers to the notifications shown while activating. */
  messageAnswers?: (string | undefined)[];
}

export async function activate(options: ActivateOptions = {}): Promise<Activated> {
  reset();
  state.messageAnswers.push(...(options.messageAnswers ?? []));
  state.openDialogAnswers.push(...(options.openDialogAnswers ?? []));
  for (const [key, value] of Object.entries(options.settings ?? {})) {
    state.settings.set(key, value);
  }
  const launches: ServerLaunch[] = [];
  let client: FakeClient | undefined;
  const deps: ExtensionDeps = {
    findServer: (serverPath) => (options.findServer ? options.findServer(serverPath) : (options.server ?? LAUNCH)),
    createClient: (launch, clientOptions) => {
      launches.push(launch);
      client = new FakeClient(clientOptions);
      client.startError = options.startError;
      return client;
    },
  };
  const subscriptions: { dispose(): unknown }[] = [];
  const ext = await extension.activate({ subscriptions } as never, deps);
  return { ext, client: client ?? new FakeClient({}), launches };
}

/** Let queued promise callbacks run. */
export async function settle(): Promise<void> {
  for (let i = 0; i < 5; i++) {
    await new Promise((resolve) => setImmediate(resolve));
  }
}

export { state };
export { extension };
