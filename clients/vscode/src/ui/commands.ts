/**
 * The extension's own commands: each asks for input or picks something first, then calls a
 * server command. Commands that need nothing (Build sandbox image, Doctor, Apply pending
 * proposal) are the server's ids directly in package.json and need no code here.
 */

import * as vscode from "vscode";

import type { JobEntry, JobHistory } from "../history";
import { CLIENT_COMMANDS, SERVER_COMMANDS } from "../ids";
import { diagnosticsNear, editorContext, toLspDiagnostic } from "./editorContext";
import type { JobUi } from "./jobUi";
import { rejectWithReason } from "./proposalUi";

export interface JobInfo {
  jobId: string;
  kind?: string;
  state?: string;
  phase?: string | null;
  elapsed?: number;
  prompt?: string;
  proposalId?: string | null;
  error?: unknown;
}

export interface ProposalInfo {
  proposalId: string;
  jobId: string;
  prompt?: string;
  files?: string[];
}

export interface CommandHost {
  jobUi(): JobUi | undefined;
  showTranscript(): void;
  restartServer(): Promise<void>;
  /** The jobs this window started, across server restarts (lost ones are listed from here). */
  history?(): JobHistory;
}

export function registerCommands(host: CommandHost): vscode.Disposable[] {
  const withServer =
    (body: (jobUi: JobUi) => Promise<unknown>) =>
    async (): Promise<unknown> => {
      const jobUi = host.jobUi();
      if (!jobUi) {
        await vscode.window.showErrorMessage(
          "Claude: the channelcoder language server is not running — run \"Claude: Restart language server\" or see the \"Claude (channelcoder) server\" output.",
        );
        return undefined;
      }
      return body(jobUi);
    };
  return [
    vscode.commands.registerCommand(CLIENT_COMMANDS.ask, withServer(ask)),
    vscode.commands.registerCommand(CLIENT_COMMANDS.run, withServer(run)),
    vscode.commands.registerCommand(CLIENT_COMMANDS.explain, withServer(explain)),
    vscode.commands.registerCommand(CLIENT_COMMANDS.fix, withServer(fix)),
    vscode.commands.registerCommand(CLIENT_COMMANDS.cancel, withServer(cancel)),
    vscode.commands.registerCommand(CLIENT_COMMANDS.jobs, withServer((jobUi) => showJobs(jobUi, host.history?.().fromEarlierServers() ?? []))),
    vscode.commands.registerCommand(CLIENT_COMMANDS.rejectProposal, withServer(rejectProposal)),
    vscode.commands.registerCommand(CLIENT_COMMANDS.showTranscript, () => host.showTranscript()),
    vscode.commands.registerCommand(CLIENT_COMMANDS.restartServer, () => host.restartServer()),
  ];
}

async function ask(jobUi: JobUi): Promise<unknown> {
  const context = editorContext();
  const prompt = await vscode.window.showInputBox({
    title: "Ask Claude (read-only)",
    prompt: context?.range ? "A question about the selection" : context ? "A question about this file" : "A question about the workspace",
    placeHolder: "Empty: explain the selection or file",
    ignoreFocusOut: true,
  });
  if (prompt === undefined) {
    return undefined;
  }
  const argument: Record<string, unknown> = { ...(context ?? {}) };
  if (prompt.trim()) {
    argument.prompt = prompt.trim();
  }
  return jobUi.run(SERVER_COMMANDS.ask, argument);
}

async function run(jobUi: JobUi): Promise<unknown> {
  const context = editorContext();
  const prompt = await vscode.window.showInputBox({
    title: "Run Claude in the sandbox",
    prompt: context?.range ? "What should Claude do with the selection?" : "What should Claude do?",
    placeHolder: "e.g. add type hints to this module",
    ignoreFocusOut: true,
    validateInput: (value) => (value.trim() ? undefined : "Say what Claude should do"),
  });
  if (prompt === undefined || !prompt.trim()) {
    return undefined;
  }
  return jobUi.run(SERVER_COMMANDS.run, { prompt: prompt.trim(), ...(context ?? {}) });
}

async function explain(jobUi: JobUi): Promise<unknown> {
  const context = editorContext();
  if (!context) {
    await vscode.window.showInformationMessage("Claude: open a file (and select code) to explain it.");
    return undefined;
  }
  return jobUi.run(SERVER_COMMANDS.ask, { ...context }, "Claude: explain");
}

async function fix(jobUi: JobUi): Promise<unknown> {
  const editor = vscode.window.activeTextEditor;
  if (!editor || editor.document.uri.scheme !== "file") {
    await vscode.window.showInformationMessage("Claude: open a file with a problem to fix.");
    return undefined;
  }
  const { here, all } = diagnosticsNear(editor);
  const candidates = here.length > 0 ? here : all;
  let chosen = candidates[0];
  if (candidates.length === 0) {
    await vscode.window.showInformationMessage("Claude: this file has no problems (diagnostics) to fix.");
    return undefined;
  }
  if (candidates.length > 1) {
    const picked = await vscode.window.showQuickPick(
      candidates.map((diagnostic) => ({
        label: diagnostic.message.split("\n", 1)[0] ?? diagnostic.message,
        description: `line ${diagnostic.range.start.line + 1}${diagnostic.source ? ` · ${diagnostic.source}` : ""}`,
        diagnostic,
      })),
      { title: "Fix which problem with Claude?" },
    );
    if (!picked) {
      return undefined;
    }
    chosen = picked.diagnostic;
  }
  if (!chosen) {
    return undefined;
  }
  return jobUi.run(SERVER_COMMANDS.fix, { uri: editor.document.uri.toString(), diagnostic: toLspDiagnostic(chosen) });
}

async function listJobs(jobUi: JobUi): Promise<{ jobs: JobInfo[]; proposals: ProposalInfo[] } | undefined> {
  const result = await jobUi.execute(SERVER_COMMANDS.jobs);
  if (!result) {
    return undefined;
  }
  return {
    jobs: Array.isArray(result.jobs) ? (result.jobs as JobInfo[]) : [],
    proposals: Array.isArray(result.proposals) ? (result.proposals as ProposalInfo[]) : [],
  };
}

function isActive(job: JobInfo): boolean {
  return job.state === "running" || job.state === "queued";
}

async function cancel(jobUi: JobUi): Promise<unknown> {
  const listing = await listJobs(jobUi);
  if (!listing) {
    return undefined;
  }
  const active = listing.jobs.filter(isActive);
  if (active.length === 0) {
    await vscode.window.showInformationMessage("Claude: no job is running.");
    return undefined;
  }
  let target = active[0];
  if (active.length > 1) {
    const picked = await vscode.window.showQuickPick(active.map(jobItem), { title: "Cancel which Claude job?" });
    if (!picked) {
      return undefined;
    }
    target = picked.job;
  }
  return target ? jobUi.execute(SERVER_COMMANDS.cancel, { jobId: target.jobId }) : undefined;
}

function jobItem(job: JobInfo): vscode.QuickPickItem & { job: JobInfo } {
  const icon = isActive(job) ? "$(sync~spin)" : job.state === "succeeded" ? "$(check)" : job.state === "cancelled" ? "$(circle-slash)" : "$(error)";
  const parts = [job.state ?? "", job.phase && isActive(job) ? job.phase : "", typeof job.elapsed === "number" ? `${job.elapsed.toFixed(0)} s` : ""];
  return {
    label: `${icon} ${job.prompt || job.kind || job.jobId}`,
    description: parts.filter(Boolean).join(" · "),
    detail: `job ${job.jobId}`,
    job,
  };
}

const ENDED_ICONS: Record<string, string> = { succeeded: "$(check)", failed: "$(error)", cancelled: "$(circle-slash)", lost: "$(warning)" };

/** A job this window started that the server no longer knows (it restarted since). */
function rememberedItem(entry: JobEntry): vscode.QuickPickItem {
  const seconds = ((entry.endedAt ?? entry.startedAt) - entry.startedAt) / 1000;
  const lost = entry.state === "lost";
  return {
    label: `${ENDED_ICONS[entry.state] ?? "$(question)"} ${entry.title}`,
    description: `${entry.state} · ${seconds.toFixed(0)} s`,
    detail: `job ${entry.jobId}${lost ? " · the language server stopped while it ran" : ""}`,
  };
}

async function showJobs(jobUi: JobUi, remembered: JobEntry[] = []): Promise<unknown> {
  const listing = await listJobs(jobUi);
  if (!listing) {
    return undefined;
  }
  type Item = vscode.QuickPickItem & { job?: JobInfo; proposal?: ProposalInfo };
  const items: Item[] = [
    ...listing.proposals.map((proposal) => ({
      label: `$(diff) Proposal: ${proposal.prompt || proposal.jobId}`,
      description: (proposal.files ?? []).join(", "),
      detail: `job ${proposal.jobId} · pending review`,
      proposal,
    })),
    ...listing.jobs.map(jobItem),
    ...remembered
      .filter((entry) => entry.state !== "running" && !listing.jobs.some((job) => job.jobId === entry.jobId))
      .map(rememberedItem),
  ];
  if (items.length === 0) {
    await vscode.window.showInformationMessage("Claude: no jobs yet.");
    return listing;
  }
  const picked = await vscode.window.showQuickPick(items, { title: "Claude jobs" });
  if (picked?.proposal) {
    await proposalActions(jobUi, picked.proposal);
  } else if (picked?.job) {
    const actions = isActive(picked.job) ? ["Cancel job", "Show transcript"] : ["Show transcript"];
    const action = await vscode.window.showQuickPick(actions, { title: picked.label });
    if (action === "Cancel job") {
      await jobUi.execute(SERVER_COMMANDS.cancel, { jobId: picked.job.jobId });
    } else if (action === "Show transcript") {
      await vscode.commands.executeCommand(CLIENT_COMMANDS.showTranscript);
    }
  }
  return listing;
}

async function proposalActions(jobUi: JobUi, proposal: ProposalInfo): Promise<void> {
  const action = await vscode.window.showQuickPick(["Review and apply", "Reject…"], { title: `Proposal: ${proposal.prompt ?? proposal.jobId}` });
  if (action === "Review and apply") {
    await jobUi.execute(SERVER_COMMANDS.applyProposal, { jobId: proposal.jobId });
  } else if (action === "Reject…") {
    await rejectWithReason(jobUi, { jobId: proposal.jobId, label: `Claude: ${proposal.prompt ?? proposal.jobId}` });
  }
}

async function rejectProposal(jobUi: JobUi): Promise<unknown> {
  const listing = await listJobs(jobUi);
  if (!listing) {
    return undefined;
  }
  if (listing.proposals.length === 0) {
    await vscode.window.showInformationMessage("Claude: no proposal is pending.");
    return undefined;
  }
  let proposal = listing.proposals[0];
  if (listing.proposals.length > 1) {
    const picked = await vscode.window.showQuickPick(
      listing.proposals.map((p) => ({ label: p.prompt || p.jobId, description: (p.files ?? []).join(", "), proposal: p })),
      { title: "Reject which proposal?" },
    );
    if (!picked) {
      return undefined;
    }
    proposal = picked.proposal;
  }
  if (proposal) {
    await rejectWithReason(jobUi, { jobId: proposal.jobId, label: `Claude: ${proposal.prompt ?? proposal.jobId}` });
  }
  return undefined;
}
