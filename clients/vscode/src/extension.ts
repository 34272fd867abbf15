/**
 * Activation: find the server, start the language client, and wire the job UI, the transcript
 * and proposals to it. `activate` takes its collaborators as an optional second argument so the
 * unit tests can run it against a stubbed `vscode` and a scripted connection.
 */

import * as vscode from "vscode";
import type { LanguageClientOptions } from "vscode-languageclient/node";
import { DidChangeConfigurationNotification } from "vscode-languageserver-protocol";

import { clientOptions } from "./client";
import { findServer, type ServerLaunch, type ServerMissing } from "./discovery";
import { CLIENT_ID, CLIENT_NAME, SETTINGS_SECTION } from "./ids";
import { isJobCommand, JobClient } from "./jobs";
import { handleApplyEdit, runsOnHostMessage } from "./proposals";
import type { Rpc } from "./rpc";
import { toServerSettings, type ServerSettings } from "./settings";
import { registerCommands } from "./ui/commands";
import { JobUi } from "./ui/jobUi";
import { showFailure } from "./ui/messages";
import { rejectWithReason } from "./ui/proposalUi";
import { TranscriptChannel } from "./ui/transcript";

export interface ManagedClient extends Rpc {
  start(): Promise<void>;
  stop(): Promise<void>;
}

export interface ExtensionDeps {
  findServer(serverPath: string | null | undefined): ServerLaunch | ServerMissing;
  createClient(launch: ServerLaunch, options: LanguageClientOptions): ManagedClient | Promise<ManagedClient>;
}

export const RUNNING_CONTEXT = "channelcoder.serverRunning";
export const COPY_INSTALL = "Copy install command";
export const OPEN_SETTINGS = "Open settings";

export class ChannelcoderExtension implements vscode.Disposable {
  private client: ManagedClient | undefined;
  private jobs: JobClient | undefined;
  private ui: JobUi | undefined;
  private readonly transcript: TranscriptChannel;
  private readonly serverLog: vscode.LogOutputChannel;
  private readonly disposables: vscode.Disposable[] = [];

  /** Whether the language server is up (the integration suite reads this). */
  get serverRunning(): boolean {
    return this.client !== undefined && this.ui !== undefined;
  }

  constructor(private readonly deps: ExtensionDeps) {
    this.transcript = new TranscriptChannel(vscode.window.createOutputChannel("Claude"));
    this.serverLog = vscode.window.createOutputChannel(`${CLIENT_NAME} server`, { log: true });
    this.disposables.push(
      this.transcript,
      this.serverLog,
      ...registerCommands({
        jobUi: () => this.ui,
        showTranscript: () => this.transcript.show(),
        restartServer: () => this.restart(),
      }),
      vscode.workspace.onDidChangeConfiguration((event) => this.configurationChanged(event)),
    );
  }

  async start(): Promise<boolean> {
    const launch = this.deps.findServer(config().get<string | null>("serverPath"));
    if ("missing" in launch) {
      void this.reportMissing(launch);
      return false;
    }
    const client = await this.deps.createClient(
      launch,
      clientOptions(
        {
          settings: () => this.settings(),
          executeCommand: (command, args) => this.executeServerCommand(command, args),
          applyEdit: (params, next) =>
            handleApplyEdit(params, {
              versionOf: (uri) => documentVersion(uri),
              apply: next,
              declined: (proposal) => {
                if (this.ui) {
                  void rejectWithReason(this.ui, proposal);
                }
              },
              runsOnHost: (labels) => {
                void vscode.window.showWarningMessage(runsOnHostMessage(labels));
              },
            }),
        },
        this.serverLog,
      ),
    );
    const jobs = new JobClient(client);
    jobs.onEvent((notification) => this.transcript.onEvent(notification));
    this.client = client;
    this.jobs = jobs;
    this.ui = new JobUi(jobs, this.transcript, { revealTranscript: () => config().get<boolean>("revealTranscript") ?? true });
    try {
      await client.start();
    } catch (error) {
      this.ui = undefined;
      this.client = undefined;
      jobs.dispose();
      this.jobs = undefined;
      await showFailure({
        message: `the language server (${[launch.command, ...launch.args].join(" ")}) did not start: ${error instanceof Error ? error.message : String(error)}`,
        hint: `run '${launch.command} doctor' in a terminal, and see the "${CLIENT_NAME} server" output`,
      });
      return false;
    }
    await vscode.commands.executeCommand("setContext", RUNNING_CONTEXT, true);
    return true;
  }

  async stop(): Promise<void> {
    const client = this.client;
    this.client = undefined;
    this.ui = undefined;
    this.jobs?.dispose();
    this.jobs = undefined;
    await vscode.commands.executeCommand("setContext", RUNNING_CONTEXT, false);
    if (client) {
      try {
        await client.stop();
      } catch (error) {
        this.serverLog.warn(`stopping the language server: ${error instanceof Error ? error.message : String(error)}`);
      }
    }
  }

  async restart(): Promise<void> {
    await this.stop();
    await this.start();
  }

  dispose(): void {
    void this.stop();
    for (const disposable of this.disposables.splice(0)) {
      disposable.dispose();
    }
  }

  private settings(): ServerSettings {
    const section = config();
    return toServerSettings((key) => section.get(key));
  }

  /** Every server command, from the palette or a code action, goes through here. */
  private async executeServerCommand(command: string, args: unknown[]): Promise<unknown> {
    const ui = this.ui;
    if (!ui) {
      return undefined;
    }
    const first = args[0];
    const argument = typeof first === "object" && first !== null && !Array.isArray(first) ? (first as Record<string, unknown>) : undefined;
    return isJobCommand(command) ? ui.run(command, argument) : ui.execute(command, argument);
  }

  private configurationChanged(event: vscode.ConfigurationChangeEvent): void {
    if (event.affectsConfiguration(`${SETTINGS_SECTION}.serverPath`)) {
      void vscode.window
        .showInformationMessage("Claude: channelcoder.serverPath changed.", "Restart server")
        .then((choice) => (choice ? this.restart() : undefined));
      return;
    }
    if (event.affectsConfiguration(SETTINGS_SECTION) && this.client) {
      void this.client.sendNotification(DidChangeConfigurationNotification.method, {
        settings: { [SETTINGS_SECTION]: this.settings() },
      });
    }
  }

  private async reportMissing(missing: ServerMissing): Promise<void> {
    const choice = await vscode.window.showErrorMessage(`Claude: ${missing.message} ${missing.hint}`, COPY_INSTALL, OPEN_SETTINGS);
    if (choice === COPY_INSTALL) {
      await vscode.env.clipboard.writeText(missing.installCommand);
    } else if (choice === OPEN_SETTINGS) {
      await vscode.commands.executeCommand("workbench.action.openSettings", `${SETTINGS_SECTION}.serverPath`);
    }
  }
}

function config(): vscode.WorkspaceConfiguration {
  return vscode.workspace.getConfiguration(SETTINGS_SECTION);
}

function documentVersion(uri: string): number | undefined {
  const wanted = vscode.Uri.parse(uri).toString();
  return vscode.workspace.textDocuments.find((document) => document.uri.toString() === wanted)?.version;
}

export const productionDeps: ExtensionDeps = {
  findServer: (serverPath) => findServer(serverPath),
  async createClient(launch, options) {
    const { LanguageClient } = await import("vscode-languageclient/node");
    // No `transport`: TransportKind.stdio would append `--stdio`, which `channelcoder lsp` rejects;
    // without it the client talks over the process's stdin/stdout all the same.
    return new LanguageClient(CLIENT_ID, CLIENT_NAME, { command: launch.command, args: [...launch.args] }, options);
  },
};

let current: ChannelcoderExtension | undefined;

export async function activate(context: vscode.ExtensionContext, deps: ExtensionDeps = productionDeps): Promise<ChannelcoderExtension> {
  const extension = new ChannelcoderExtension(deps);
  current = extension;
  context.subscriptions.push(extension);
  await extension.start();
  return extension;
}

export async function deactivate(): Promise<void> {
  const extension = current;
  current = undefined;
  await extension?.stop();
}
