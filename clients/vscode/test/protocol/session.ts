/**
 * A VS Code-shaped LSP client for the protocol tests: it starts the real `channelcoder lsp`
 * (found by the extension's own discovery) over stdio with vscode-languageserver-protocol,
 * announces VS Code's capabilities, sends the extension's mapped settings, runs jobs through
 * the extension's JobClient and answers `workspace/applyEdit` through the extension's proposal
 * handler, applying accepted edits to its open documents (as VS Code would) or to disk.
 */

import { type ChildProcessWithoutNullStreams, spawn } from "node:child_process";
import { readFileSync, renameSync, rmSync, writeFileSync } from "node:fs";
import { fileURLToPath, pathToFileURL } from "node:url";

import {
  ApplyWorkspaceEditRequest,
  CreateFile,
  DeleteFile,
  DidChangeTextDocumentNotification,
  DidOpenTextDocumentNotification,
  ExitNotification,
  InitializeRequest,
  InitializedNotification,
  RenameFile,
  ShutdownRequest,
  TextDocumentEdit,
  type ApplyWorkspaceEditParams,
  type ApplyWorkspaceEditResult,
  type InitializeResult,
  type LogMessageParams,
  type ProtocolConnection,
  type ShowDocumentParams,
  type ShowMessageParams,
  type TextEdit,
  type WorkspaceEdit,
} from "vscode-languageserver-protocol";
import { createProtocolConnection, StreamMessageReader, StreamMessageWriter } from "vscode-languageserver-protocol/node";
import { TextDocument } from "vscode-languageserver-textdocument";

import { findServer } from "../../src/discovery";
import type { EventNotification } from "../../src/events";
import { JobClient } from "../../src/jobs";
import { handleApplyEdit, type DeclinedProposal } from "../../src/proposals";
import { toServerSettings } from "../../src/settings";

export interface AppliedEdit {
  params: ApplyWorkspaceEditParams;
  answer: ApplyWorkspaceEditResult;
}

/** What VS Code 1.91 with vscode-languageclient 11 announces, for what the server looks at. */
export const VSCODE_CAPABILITIES = {
  general: { positionEncodings: ["utf-16"] },
  window: { workDoneProgress: true, showDocument: { support: true }, showMessage: { messageActionItem: { additionalPropertiesSupport: true } } },
  workspace: {
    applyEdit: true,
    configuration: true,
    workspaceFolders: true,
    didChangeConfiguration: { dynamicRegistration: true },
    didChangeWatchedFiles: { dynamicRegistration: true, relativePatternSupport: true },
    executeCommand: { dynamicRegistration: true },
    workspaceEdit: {
      documentChanges: true,
      resourceOperations: ["create", "rename", "delete"],
      failureHandling: "textOnlyTransactional",
      normalizesLineEndings: true,
      changeAnnotationSupport: { groupsOnLabel: true },
    },
  },
  textDocument: {
    synchronization: { dynamicRegistration: true, willSave: true, willSaveWaitUntil: true, didSave: true },
    codeAction: {
      dynamicRegistration: true,
      isPreferredSupport: true,
      disabledSupport: true,
      dataSupport: true,
      resolveSupport: { properties: ["edit"] },
      codeActionLiteralSupport: {
        codeActionKind: { valueSet: ["", "quickfix", "refactor", "refactor.extract", "refactor.inline", "refactor.rewrite", "source", "source.organizeImports"] },
      },
      honorsChangeAnnotations: true,
    },
  },
};

export class ServerSession {
  readonly messages: ShowMessageParams[] = [];
  readonly logs: LogMessageParams[] = [];
  readonly shownDocuments: ShowDocumentParams[] = [];
  readonly createdTokens: unknown[] = [];
  readonly edits: AppliedEdit[] = [];
  readonly declined: DeclinedProposal[] = [];
  readonly events: EventNotification[] = [];
  readonly documents = new Map<string, TextDocument>();
  /** How the "user" answers the refactor preview. */
  preview: "accept" | "decline" = "accept";
  jobs!: JobClient;
  initialized!: InitializeResult;
  stderr = "";
  private exitCode: number | null | undefined;
  private readonly exited: Promise<number | null>;

  private constructor(
    readonly child: ChildProcessWithoutNullStreams,
    readonly connection: ProtocolConnection,
    readonly workspace: string,
  ) {
    child.stderr.on("data", (chunk: Buffer) => {
      this.stderr += chunk.toString();
    });
    this.exited = new Promise((resolve) => child.on("exit", (code) => resolve((this.exitCode = code))));
  }

  static async start(settings: Record<string, unknown> = testSettings()): Promise<ServerSession> {
    const workspace = requiredEnv("CHANNELCODER_TEST_WORKSPACE");
    const found = findServer(requiredEnv("CHANNELCODER_TEST_SERVER_PATH"));
    if ("missing" in found) {
      throw new Error(`${found.message} ${found.hint}`);
    }
    const child = spawn(found.command, [...found.args], { cwd: workspace, env: process.env, stdio: "pipe" });
    const connection = createProtocolConnection(new StreamMessageReader(child.stdout), new StreamMessageWriter(child.stdin));
    const session = new ServerSession(child, connection, workspace);
    session.listen(settings);
    connection.listen();
    session.jobs = new JobClient(connection);
    session.jobs.onEvent((notification) => session.events.push(notification));
    const rootUri = pathToFileURL(workspace).href;
    session.initialized = await withTimeout(
      connection.sendRequest(InitializeRequest.type, {
        processId: process.pid,
        clientInfo: { name: "Visual Studio Code", version: "1.91.0" },
        rootUri,
        workspaceFolders: [{ uri: rootUri, name: "repo" }],
        capabilities: VSCODE_CAPABILITIES as never,
        initializationOptions: toServerSettings((key) => settings[key]),
      }),
      30_000,
      () => `initialize (server stderr: ${session.stderr})`,
    );
    await connection.sendNotification(InitializedNotification.type, {});
    return session;
  }

  private listen(settings: Record<string, unknown>): void {
    const { connection } = this;
    connection.onNotification("window/showMessage", (params: ShowMessageParams) => {
      this.messages.push(params);
    });
    connection.onNotification("window/logMessage", (params: LogMessageParams) => {
      this.logs.push(params);
    });
    connection.onRequest("window/showMessageRequest", () => null);
    connection.onRequest("window/showDocument", (params: ShowDocumentParams) => {
      this.shownDocuments.push(params);
      return { success: true };
    });
    connection.onRequest("window/workDoneProgress/create", (params: { token: unknown }) => {
      this.createdTokens.push(params.token);
      return null;
    });
    connection.onRequest("client/registerCapability", () => null);
    connection.onRequest("client/unregisterCapability", () => null);
    connection.onRequest("workspace/configuration", (params: { items: { section?: string }[] }) =>
      params.items.map((item) => (item.section === "channelcoder" ? toServerSettings((key) => settings[key]) : null)),
    );
    connection.onRequest(ApplyWorkspaceEditRequest.type, async (params) => {
      const answer = await handleApplyEdit(params, {
        versionOf: (uri) => this.documents.get(uri)?.version,
        apply: async (forwarded) => (this.preview === "accept" ? this.apply(forwarded.edit) : { applied: false }),
        declined: (proposal) => this.declined.push(proposal),
      });
      this.edits.push({ params, answer });
      return answer;
    });
  }

  uri(relative: string): string {
    return pathToFileURL(`${this.workspace}/${relative}`).href;
  }

  /** Open a document with (possibly unsaved) text, as VS Code does for an editor tab. */
  async open(relative: string, text: string): Promise<string> {
    const uri = this.uri(relative);
    const document = TextDocument.create(uri, "python", 1, text);
    this.documents.set(uri, document);
    await this.connection.sendNotification(DidOpenTextDocumentNotification.type, {
      textDocument: { uri, languageId: "python", version: 1, text },
    });
    return uri;
  }

  /** The user types: the whole new text, one version up. */
  async change(uri: string, text: string): Promise<void> {
    const old = this.documents.get(uri);
    if (!old) {
      throw new Error(`${uri} is not open`);
    }
    const document = TextDocument.create(uri, old.languageId, old.version + 1, text);
    this.documents.set(uri, document);
    await this.connection.sendNotification(DidChangeTextDocumentNotification.type, {
      textDocument: { uri, version: document.version },
      contentChanges: [{ text }],
    });
  }

  text(uri: string): string | undefined {
    return this.documents.get(uri)?.getText();
  }

  /** Apply an accepted edit: open documents change (and the server hears didChange), other files on disk. */
  private async apply(edit: WorkspaceEdit): Promise<ApplyWorkspaceEditResult> {
    for (const change of edit.documentChanges ?? []) {
      if (TextDocumentEdit.is(change)) {
        const uri = change.textDocument.uri;
        const document = this.documents.get(uri);
        if (document) {
          await this.change(uri, TextDocument.applyEdits(document, textEditsOf(change.edits)));
        } else {
          const file = fileURLToPath(uri);
          const current = TextDocument.create(uri, "text", 0, readFileSync(file, "utf8"));
          writeFileSync(file, TextDocument.applyEdits(current, textEditsOf(change.edits)));
        }
      } else if (CreateFile.is(change)) {
        writeFileSync(fileURLToPath(change.uri), "", { flag: change.options?.overwrite ? "w" : "wx" });
      } else if (DeleteFile.is(change)) {
        rmSync(fileURLToPath(change.uri), { recursive: change.options?.recursive ?? false });
      } else if (RenameFile.is(change)) {
        renameSync(fileURLToPath(change.oldUri), fileURLToPath(change.newUri));
      }
    }
    for (const [uri, textEdits] of Object.entries(edit.changes ?? {})) {
      const document = this.documents.get(uri);
      if (document) {
        await this.change(uri, TextDocument.applyEdits(document, textEdits));
      } else {
        const file = fileURLToPath(uri);
        writeFileSync(file, TextDocument.applyEdits(TextDocument.create(uri, "text", 0, readFileSync(file, "utf8")), textEdits));
      }
    }
    return { applied: true };
  }

  eventsOf(jobId: string): EventNotification["event"][] {
    return this.events.filter((n) => n.jobId === jobId).map((n) => n.event);
  }

  /** Wait until `predicate` holds (a hang guard, not a timing assertion). */
  async waitFor(predicate: () => boolean, what: string, timeoutMs = 20_000): Promise<void> {
    const deadline = Date.now() + timeoutMs;
    while (!predicate()) {
      if (Date.now() > deadline) {
        throw new Error(`timed out waiting for ${what}; server stderr:\n${this.stderr.slice(-3000)}`);
      }
      if (this.exitCode !== undefined) {
        throw new Error(`the server exited (${String(this.exitCode)}) while waiting for ${what}:\n${this.stderr.slice(-3000)}`);
      }
      await new Promise((resolve) => setTimeout(resolve, 25));
    }
  }

  /** shutdown + exit, as VS Code does; resolves with the server's exit code. */
  async close(): Promise<number | null> {
    try {
      await withTimeout(this.connection.sendRequest(ShutdownRequest.type), 20_000, () => "shutdown");
      await this.connection.sendNotification(ExitNotification.type);
      return await withTimeout(this.exited, 20_000, () => "the server to exit after 'exit'");
    } finally {
      this.connection.dispose();
      if (this.exitCode === undefined) {
        this.child.kill("SIGKILL");
      }
    }
  }
}

/** The server sends plain or annotated text edits; a snippet edit would be a server bug. */
function textEditsOf(edits: TextDocumentEdit["edits"]): TextEdit[] {
  return edits.map((edit) => {
    if (!("newText" in edit)) {
      throw new Error(`unexpected snippet edit ${JSON.stringify(edit)}`);
    }
    return edit;
  });
}

/** The settings the pytest wrapper chose (native or sandboxed), as the user would set them. */
export function testSettings(): Record<string, unknown> {
  return JSON.parse(process.env.CHANNELCODER_TEST_SETTINGS ?? "{}") as Record<string, unknown>;
}

function requiredEnv(name: string): string {
  const value = process.env[name];
  if (!value) {
    throw new Error(`${name} is not set: run this suite through tests/clients/test_vscode_protocol.py`);
  }
  return value;
}

export async function withTimeout<T>(promise: Promise<T>, ms: number, what: () => string): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new Error(`timed out after ${ms} ms waiting for ${what()}`)), ms);
  });
  try {
    return await Promise.race([promise, timeout]);
  } finally {
    clearTimeout(timer);
  }
}
