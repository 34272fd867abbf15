/**
 * Activation: find the server, start the language client, and wire the job UI, the transcript
 * and proposals to it. `activate` takes its collaborators as an optional second argument so the
 * unit tests can run it against a stubbed `vscode` and a scripted connection.
 */

import * as vscode from "vscode";
import { CloseAction, type CloseHandlerResult, type LanguageClientOptions } from "vscode-languageclient/node";
import { DidChangeConfigurationNotification, MessageType, ShowMessageNotification, type ShowMessageParams } from "vscode-languageserver-protocol";

import { clientOptions } from "./client";
import { findServer, type ServerLaunch, type ServerMissing } from "./discovery";
import { JobHistory } from "./history";
import { CLIENT_COMMANDS, CLIENT_ID, CLIENT_NAME, SERVER_COMMANDS, SETTINGS_SECTION } from "./ids";
import { isJobCommand, JobClient } from "./jobs";
import { DECLINED_REASON, handleApplyEdit, runsOnHostMessage, type StaleProposal } from "./proposals";
import { RestartBudget } from "./restarts";
import { ServerMessages } from "./serverMessages";
import type { Rpc } from "./rpc";
import { toServerSettings, type ServerSettings } from "./settings";
import { registerCommands } from "./ui/commands";
import { JobUi } from "./ui/jobUi";
import { showFailure } from "./ui/messages";
import { rejectWithReason, revealConflicts } from "./ui/proposalUi";
import { JobStatusBar } from "./ui/statusBar";
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
export const PICK_SERVER = "Choose file…";
export const REVIEW_AGAIN = "Review again";
export const SHOW_JOBS = "Show jobs";
export const CRASH_NOTICE_DELAY_MS = 1000;

export class ChannelcoderExtension implements vscode.Disposable {
  private client: ManagedClient | undefined;
  private jobs: JobClient | undefined;
  private ui: JobUi | undefined;
  private readonly transcript: TranscriptChannel;
  private readonly serverLog: vscode.LogOutputChannel;
  private readonly disposables: vscode.Disposable[] = [];
  /** Every job this window started, across server restarts. */
  readonly history = new JobHistory();
  readonly statusBar: JobStatusBar;
  private readonly restarts = new RestartBudget();
  private readonly messages = new ServerMessages({
    show: (type, text, ...actions) => showByType(type, text, ...actions),
    openSettings: () => vscode.commands.executeCommand("workbench.action.openSettings", SETTINGS_SECTION),
    staleOffer: (jobId, files) => this.staleProposal({ jobId, files, reason: "" }),
  });

  /** Whether the language server is up (the integration suite reads this). */
  get serverRunning(): boolean {
    return this.client !== undefined && this.ui !== undefined;
  }

  constructor(private readonly deps: ExtensionDeps) {
    this.transcript = new TranscriptChannel(vscode.window.createOutputChannel("Claude"));
    this.serverLog = vscode.window.createOutputChannel(`${CLIENT_NAME} server`, { log: true });
    this.statusBar = new JobStatusBar(this.history);
    // A declined preview is followed by the extension's own question (why?), not the server's
    // note that the proposal is kept.
    this.messages.quiet(DECLINED_REASON);
    this.disposables.push(
      this.transcript,
      this.serverLog,
      this.statusBar,
      ...registerCommands({
        jobUi: () => this.ui,
        showTranscript: () => this.transcript.show(),
        restartServer: () => this.restart(),
        history: () => this.history,
      }),
      vscode.workspace.onDidChangeConfiguration((event) => this.configurationChanged(event)),
    );
  }

  async start(): Promise<boolean> {
    const launch = this.deps.findServer(config().get<string | null>("serverPath"));
    if ("missing" in launch) {
      this.reported = this.reportMissing(launch);
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
              stale: (proposal) => this.staleProposal(proposal),
            }),
          serverClosed: () => this.serverClosed(),
        },
        this.serverLog,
      ),
    );
    client.onNotification(ShowMessageNotification.method, (params) => this.messages.received(params as ShowMessageParams));
    const jobs = new JobClient(client);
    jobs.onEvent((notification) => this.transcript.onEvent(notification));
    this.client = client;
    this.jobs = jobs;
    this.ui = new JobUi(jobs, this.transcript, {
      revealTranscript: () => config().get<boolean>("revealTranscript") ?? true,
      history: this.history,
    });
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
    if (isJobCommand(command)) {
      return ui.run(command, argument);
    }
    const result = await ui.execute(command, argument);
    if (command === SERVER_COMMANDS.applyProposal && result) {
      await revealConflicts(result);
    }
    return result;
  }

  /** One short notification in VS Code's words; its button re-offers the proposal on the current text. */
  private staleProposal(proposal: StaleProposal): void {
    if (proposal.reason) {
      this.messages.quiet(proposal.reason);
    }
    const files = proposal.files.join(", ");
    void vscode.window
      .showInformationMessage(`Claude: ${files} changed while Claude worked, so its proposal was not applied. It is kept.`, REVIEW_AGAIN)
      .then((choice) =>
        choice === REVIEW_AGAIN ? this.executeServerCommand(SERVER_COMMANDS.applyProposal, [{ jobId: proposal.jobId }]) : undefined,
      );
  }

  /**
   * The server's process ended unasked (a crash, a kill): its running jobs are lost — said in
   * the transcript, the status bar and the job list — and it is restarted, a bounded number of
   * times, with a notification each time.
   */
  private serverClosed(): CloseHandlerResult {
    const lost = this.history.loseRunning();
    this.jobs?.loseAll();
    this.transcript.lost(lost);
    const jobs = lost.length === 0 ? "" : lost.length === 1 ? " — the job it was running is lost" : ` — the ${lost.length} jobs it was running are lost`;
    const attempt = this.restarts.take();
    if (attempt === undefined) {
      this.ui = undefined;
      void vscode.commands.executeCommand("setContext", RUNNING_CONTEXT, false);
      void vscode.window.showErrorMessage(
        `Claude: the language server stopped unexpectedly${jobs}. It stopped ${this.restarts.limit + 1} times in ${this.restarts.windowMinutes} minutes, so it is not restarted: see the "${CLIENT_NAME} server" output, then run "Claude: Restart language server".`,
        SHOW_JOBS,
      ).then((choice) => (choice === SHOW_JOBS ? vscode.commands.executeCommand(CLIENT_COMMANDS.jobs) : undefined));
      return { action: CloseAction.DoNotRestart, handled: true };
    }
    const text = `Claude: the language server stopped unexpectedly${jobs}. Restarting it (attempt ${attempt} of ${this.restarts.limit})…`;
    // VS Code toasts at most 3 new notifications in 800 ms and sends the rest to the
    // notification center unseen; a crash comes with a burst of them (the job's progress…).
    setTimeout(() => {
      void vscode.window.showWarningMessage(text, SHOW_JOBS).then((choice) => (choice === SHOW_JOBS ? vscode.commands.executeCommand(CLIENT_COMMANDS.jobs) : undefined));
    }, CRASH_NOTICE_DELAY_MS);
    return { action: CloseAction.Restart, handled: true };
  }

  /** The notification shown when the server was not found (the unit tests await it). */
  reported: Promise<void> | undefined;

  private configurationChanged(event: vscode.ConfigurationChangeEvent): void {
    if (event.affectsConfiguration(`${SETTINGS_SECTION}.serverPath`)) {
      if (this.pickingServer) {
        return;
      }
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

  /**
   * Not found: say which setting to set, and offer to pick the executable (say, in a venv that
   * is not on the extension host's PATH); the choice goes to the user settings and the server
   * starts with it.
   */
  private async reportMissing(missing: ServerMissing): Promise<void> {
    const choice = await vscode.window.showErrorMessage(`Claude: ${missing.message} ${missing.hint}`, PICK_SERVER, COPY_INSTALL, OPEN_SETTINGS);
    if (choice === COPY_INSTALL) {
      await vscode.env.clipboard.writeText(missing.installCommand);
    } else if (choice === OPEN_SETTINGS) {
      await vscode.commands.executeCommand("workbench.action.openSettings", `${SETTINGS_SECTION}.serverPath`);
    } else if (choice === PICK_SERVER) {
      await this.pickServer();
    }
  }

  private async pickServer(): Promise<void> {
    const picked = await vscode.window.showOpenDialog({
      title: "The channelcoder executable (e.g. .venv/bin/channelcoder)",
      openLabel: "Use for Claude",
      canSelectFiles: true,
      canSelectFolders: false,
      canSelectMany: false,
    });
    const file = picked?.[0];
    if (!file) {
      return;
    }
    this.pickingServer = true;
    try {
      await config().update("serverPath", file.fsPath, vscode.ConfigurationTarget.Global);
    } finally {
      this.pickingServer = false;
    }
    await this.restart();
  }

  private pickingServer = false;
}

function showByType(type: number, text: string, ...actions: string[]): Thenable<string | undefined> {
  switch (type) {
    case MessageType.Error:
      return vscode.window.showErrorMessage(text, ...actions);
    case MessageType.Warning:
      return vscode.window.showWarningMessage(text, ...actions);
    default:
      return vscode.window.showInformationMessage(text, ...actions);
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
