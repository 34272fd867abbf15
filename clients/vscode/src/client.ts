/**
 * The language client's options: settings as initializationOptions and through
 * `workspace/configuration` (client-only keys left out), every server command routed through the job UI (so code actions get
 * the same progress and cancel as palette commands), and proposals through the version check.
 */

import * as vscode from "vscode";
import { ErrorAction, type CloseHandlerResult, type ErrorHandlerResult, type LanguageClientOptions } from "vscode-languageclient/node";
import {
  CancellationToken,
  type ApplyWorkspaceEditParams,
  type ApplyWorkspaceEditResult,
  type ConfigurationParams,
} from "vscode-languageserver-protocol";

import { SETTINGS_SECTION } from "./ids";
import type { ServerSettings } from "./settings";

export interface ClientHooks {
  settings(): ServerSettings;
  executeCommand(command: string, args: unknown[]): Promise<unknown>;
  applyEdit(params: ApplyWorkspaceEditParams, next: (params: ApplyWorkspaceEditParams) => Promise<ApplyWorkspaceEditResult>): Promise<ApplyWorkspaceEditResult>;
  /** The server's process ended without being asked to: restart it or not (the extension tells the user). */
  serverClosed(): CloseHandlerResult | Promise<CloseHandlerResult>;
}

/** A bad message is logged and the connection stays (no notification in the library's words). */
const CONTINUE: ErrorHandlerResult = { action: ErrorAction.Continue, handled: true };

export function clientOptions(hooks: ClientHooks, outputChannel: vscode.LogOutputChannel): LanguageClientOptions {
  return {
    documentSelector: [{ scheme: "file" }],
    initializationOptions: () => hooks.settings(),
    // No retry and none of the client's own "initialization failed" notifications: the
    // extension reports a failed start once, with the command line and a hint.
    initializationFailedHandler: () => false,
    errorHandler: {
      error: () => CONTINUE,
      closed: () => hooks.serverClosed(),
    },
    outputChannel,
    middleware: {
      executeCommand: (command, args) => hooks.executeCommand(command, args),
      workspace: {
        configuration: async (params: ConfigurationParams, token, next) => {
          if (params.items.every((item) => item.section === SETTINGS_SECTION)) {
            return params.items.map(() => hooks.settings());
          }
          const answers = await next(params, token);
          if (!Array.isArray(answers)) {
            return answers;
          }
          return answers.map((answer, index) => (params.items[index]?.section === SETTINGS_SECTION ? hooks.settings() : answer));
        },
        // The library would push the whole `channelcoder` section (serverPath, revealTranscript,
        // trace… which the server rightly calls unknown) when the server registers for
        // didChangeConfiguration and on every change; the extension pushes the server's keys
        // itself, so that section is never forwarded from here.
        didChangeConfiguration: async (sections, next) => {
          if (sections === undefined) {
            return next(sections);
          }
          const others = sections.filter((section) => section !== SETTINGS_SECTION && !section.startsWith(`${SETTINGS_SECTION}.`));
          return others.length > 0 ? next(others) : undefined;
        },
        handleApplyEdit: (params, next) =>
          hooks.applyEdit(params, async (forwarded) => {
            const answer = await next(forwarded, CancellationToken.None);
            if (answer && typeof answer === "object" && "applied" in answer) {
              return answer;
            }
            return { applied: false, failureReason: "VS Code could not apply the edit" };
          }),
      },
    },
  };
}
