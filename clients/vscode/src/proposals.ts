/**
 * The client's side of proposals (docs/lsp.md §5). The server sends a propose-mode job's changes
 * as one `workspace/applyEdit` whose edits carry the change annotation `channelcoder:<jobId>`
 * with `needsConfirmation` (VS Code shows its refactor preview). This module checks document
 * versions first — a buffer edited since the job started is refused with a reason, never
 * clobbered — then applies, and reports a refusal by the user so the caller can ask for a reason
 * and reject the proposal.
 */

import {
  TextDocumentEdit,
  type ApplyWorkspaceEditParams,
  type ApplyWorkspaceEditResult,
  type WorkspaceEdit,
} from "vscode-languageserver-protocol";

export const ANNOTATION_PREFIX = "channelcoder:";
/** The reason sent for a proposal the user declined in the preview. */
export const DECLINED_REASON = "declined in the editor's preview";
/** The server gives each file your machine runs later (a git hook, a Makefile…) an annotation of
 * its own, labelled "⚠ Runs on your machine: <path> (<what runs it>)": the preview groups them. */
export const HOST_RUN_PREFIX = "channelcoder-hostrun:";

export interface ProposalHooks {
  /** The version of an open document, undefined when it is not open. */
  versionOf(uri: string): number | undefined;
  /** Apply the edit (VS Code: the language client's own handler, which shows the preview). */
  apply(params: ApplyWorkspaceEditParams): Promise<ApplyWorkspaceEditResult>;
  /** The user declined a proposal (not a stale or failed edit). Called after the answer is sent. */
  declined?(proposal: DeclinedProposal): void;
  /** The proposal changes files your machine runs later; called with their labels as the preview opens. */
  runsOnHost?(labels: string[]): void;
  /** A proposal was refused because these files changed since its job started (`reason` is what
   * the server is told, and repeats in its own message). Must not wait on the user. */
  stale?(proposal: StaleProposal): void;
}

export interface StaleProposal {
  readonly jobId: string;
  readonly files: string[];
  readonly reason: string;
}

export interface DeclinedProposal {
  readonly jobId: string;
  readonly label: string;
}

/** The job that proposed this edit, from its change annotation; undefined for other edits. */
export function proposalJobId(params: ApplyWorkspaceEditParams): string | undefined {
  for (const id of Object.keys(params.edit.changeAnnotations ?? {})) {
    if (id.startsWith(ANNOTATION_PREFIX) && id.length > ANNOTATION_PREFIX.length) {
      return id.slice(ANNOTATION_PREFIX.length);
    }
  }
  return undefined;
}

/** The labels of the edit's "runs on your machine" annotations, one per flagged file. */
export function hostRunLabels(params: ApplyWorkspaceEditParams): string[] {
  return Object.entries(params.edit.changeAnnotations ?? {})
    .filter(([id]) => id.startsWith(HOST_RUN_PREFIX))
    .map(([, annotation]) => annotation.label);
}

/** The warning shown beside the preview: which files run on your machine, in the preview's words. */
export function runsOnHostMessage(labels: string[]): string {
  const files = labels.map((label) => label.replace(/^⚠ Runs on your machine: /, ""));
  const what = files.length === 1 ? "a file that runs" : `${files.length} files that run`;
  return `Claude: this proposal changes ${what} on your machine — ${files.join(", ")}. Check them in the preview before you accept.`;
}

/** URIs of open documents whose version is not the one the edit was made for. */
export function staleDocuments(edit: WorkspaceEdit, versionOf: (uri: string) => number | undefined): string[] {
  const stale: string[] = [];
  for (const change of edit.documentChanges ?? []) {
    if (!TextDocumentEdit.is(change)) {
      continue;
    }
    const wanted = change.textDocument.version;
    if (wanted === null || wanted < 0) {
      continue;
    }
    const current = versionOf(change.textDocument.uri);
    if (current !== undefined && current !== wanted) {
      stale.push(change.textDocument.uri);
    }
  }
  return stale;
}

export async function handleApplyEdit(params: ApplyWorkspaceEditParams, hooks: ProposalHooks): Promise<ApplyWorkspaceEditResult> {
  const jobId = proposalJobId(params);
  const stale = staleDocuments(params.edit, hooks.versionOf);
  if (stale.length > 0) {
    const files = stale.map(baseName);
    const reason = `${files.join(", ")} changed since the job started`;
    if (jobId !== undefined) {
      hooks.stale?.({ jobId, files, reason });
    }
    return { applied: false, failureReason: reason };
  }
  const flagged = hostRunLabels(params);
  if (flagged.length > 0) {
    hooks.runsOnHost?.(flagged);
  }
  const result = await hooks.apply(params);
  if (!result.applied && jobId !== undefined && result.failureReason === undefined) {
    const declined: DeclinedProposal = { jobId, label: params.label ?? `Claude (job ${jobId})` };
    // The server must have its answer before anything waits on the user again.
    setImmediate(() => hooks.declined?.(declined));
    return { applied: false, failureReason: DECLINED_REASON };
  }
  return result;
}

function baseName(uri: string): string {
  const path = decodeURIComponent(uri.replace(/^[a-z]+:\/\//i, ""));
  return path.slice(path.lastIndexOf("/") + 1) || uri;
}
