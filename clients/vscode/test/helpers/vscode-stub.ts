/**
 * A stand-in for the `vscode` module (no VS Code can run here): the API surface the extension
 * uses, recording what it is asked to show and answering from queues the test fills. Settings
 * defaults come from package.json's contributions, as in VS Code.
 */

import { readFileSync } from "node:fs";
import * as path from "node:path";

export const packageJson = JSON.parse(readFileSync(path.join(__dirname, "../../../package.json"), "utf8")) as {
  contributes: {
    commands: { command: string; title: string; category?: string }[];
    configuration: { properties: Record<string, { default?: unknown }> };
    menus: Record<string, { command: string; when?: string }[]>;
  };
  capabilities: { untrustedWorkspaces: { restrictedConfigurations: string[] } };
  [key: string]: unknown;
};

type Listener<T> = (value: T) => unknown;

export class EventEmitter<T> {
  private listeners: Listener<T>[] = [];
  event = (listener: Listener<T>): Disposable => {
    this.listeners.push(listener);
    return new Disposable(() => {
      this.listeners = this.listeners.filter((l) => l !== listener);
    });
  };
  fire(value: T): void {
    for (const listener of [...this.listeners]) {
      listener(value);
    }
  }
  dispose(): void {
    this.listeners = [];
  }
}

export class Disposable {
  static from(...items: { dispose(): unknown }[]): Disposable {
    return new Disposable(() => items.forEach((item) => item.dispose()));
  }
  constructor(private readonly callback: () => void = () => undefined) {}
  dispose(): void {
    this.callback();
  }
}

export class Position {
  constructor(
    readonly line: number,
    readonly character: number,
  ) {}
}

export class Range {
  readonly start: Position;
  readonly end: Position;
  constructor(startLine: number | Position, startCharacter: number | Position, endLine?: number, endCharacter?: number) {
    if (startLine instanceof Position && startCharacter instanceof Position) {
      this.start = startLine;
      this.end = startCharacter;
    } else {
      this.start = new Position(startLine as number, startCharacter as number);
      this.end = new Position(endLine ?? 0, endCharacter ?? 0);
    }
  }
  get isEmpty(): boolean {
    return this.start.line === this.end.line && this.start.character === this.end.character;
  }
}

export class Selection extends Range {
  get active(): Position {
    return this.end;
  }
}

export class Uri {
  private constructor(
    readonly scheme: string,
    readonly fsPath: string,
  ) {}
  static file(file: string): Uri {
    return new Uri("file", file);
  }
  static parse(value: string): Uri {
    const match = /^([a-z]+):\/\/(.*)$/i.exec(value);
    return match ? new Uri(match[1] ?? "file", decodeURIComponent(match[2] ?? "")) : new Uri("file", value);
  }
  toString(): string {
    return `${this.scheme}://${encodeURI(this.fsPath)}`;
  }
}

export enum DiagnosticSeverity {
  Error = 0,
  Warning = 1,
  Information = 2,
  Hint = 3,
}

export class Diagnostic {
  source?: string;
  code?: string | number | { value: string | number; target: Uri };
  constructor(
    readonly range: Range,
    readonly message: string,
    readonly severity: DiagnosticSeverity = DiagnosticSeverity.Error,
  ) {}
}

export class TextEdit {
  constructor(
    readonly range: Range,
    readonly newText: string,
  ) {}
}

export interface EditEntryMetadata {
  label: string;
  needsConfirmation: boolean;
  description?: string;
}

/** Records what the language client's converter puts into a VS Code WorkspaceEdit. */
export class WorkspaceEdit {
  readonly textEdits: { uri: Uri; edit: TextEdit; metadata: EditEntryMetadata | undefined }[] = [];
  readonly fileOperations: { kind: string; uri: Uri; metadata: EditEntryMetadata | undefined }[] = [];
  set(uri: Uri, edits: (TextEdit | [TextEdit, EditEntryMetadata | undefined])[]): void {
    for (const entry of edits) {
      const [edit, metadata] = Array.isArray(entry) ? entry : [entry, undefined];
      this.textEdits.push({ uri, edit, metadata });
    }
  }
  replace(uri: Uri, range: Range, newText: string, metadata?: EditEntryMetadata): void {
    this.textEdits.push({ uri, edit: new TextEdit(range, newText), metadata });
  }
  createFile(uri: Uri, _options?: unknown, metadata?: EditEntryMetadata): void {
    this.fileOperations.push({ kind: "create", uri, metadata });
  }
  deleteFile(uri: Uri, _options?: unknown, metadata?: EditEntryMetadata): void {
    this.fileOperations.push({ kind: "delete", uri, metadata });
  }
  renameFile(oldUri: Uri, _newUri: Uri, _options?: unknown, metadata?: EditEntryMetadata): void {
    this.fileOperations.push({ kind: "rename", uri: oldUri, metadata });
  }
}

export class CancellationTokenSource {
  private readonly emitter = new EventEmitter<void>();
  private cancelled = false;
  readonly token = {
    isCancellationRequested: false,
    onCancellationRequested: this.emitter.event,
  };
  cancel(): void {
    if (!this.cancelled) {
      this.cancelled = true;
      this.token.isCancellationRequested = true;
      this.emitter.fire();
    }
  }
  dispose(): void {
    this.emitter.dispose();
  }
}

export class CancellationError extends Error {}

export class CodeAction {
  command?: { title: string; command: string; arguments?: unknown[] };
  constructor(
    readonly title: string,
    public kind?: CodeActionKind,
  ) {}
}

export interface CodeActionProvider {
  provideCodeActions(document: unknown, range: Range, context: unknown, token: unknown): Promise<(CodeAction | { command: string; title: string })[] | null>;
}

export class CodeActionKind {
  static readonly Empty = new CodeActionKind("");
  static readonly QuickFix = new CodeActionKind("quickfix");
  static readonly Refactor = new CodeActionKind("refactor");
  static readonly RefactorExtract = new CodeActionKind("refactor.extract");
  static readonly RefactorInline = new CodeActionKind("refactor.inline");
  static readonly RefactorRewrite = new CodeActionKind("refactor.rewrite");
  static readonly Source = new CodeActionKind("source");
  static readonly SourceOrganizeImports = new CodeActionKind("source.organizeImports");
  constructor(readonly value: string) {}
  append(part: string): CodeActionKind {
    return new CodeActionKind(this.value ? `${this.value}.${part}` : part);
  }
}

export enum LogLevel {
  Off = 0,
  Trace = 1,
  Debug = 2,
  Info = 3,
  Warning = 4,
  Error = 5,
}

export enum ProgressLocation {
  SourceControl = 1,
  Window = 10,
  Notification = 15,
}

export interface ShownMessage {
  level: "error" | "warning" | "info";
  text: string;
  actions: string[];
}

export interface ProgressRecord {
  title: string;
  location: ProgressLocation;
  cancellable: boolean;
  reports: { message?: string; increment?: number }[];
  /** Press the notification's Cancel button. */
  cancel(): void;
  finished: boolean;
}

export interface FakeDocument {
  uri: Uri;
  version: number;
  languageId?: string;
  getText?(): string;
}

/** A document as the real language client reads it. */
export function textDocument(uri: Uri, text: string, version = 1, languageId = "python"): FakeDocument & Record<string, unknown> {
  return {
    uri,
    version,
    languageId,
    getText: () => text,
    fileName: uri.fsPath,
    isUntitled: false,
    isClosed: false,
    isDirty: false,
    eol: 1,
    lineCount: text.split("\n").length,
  };
}

export interface FakeEditor {
  document: FakeDocument;
  selection: Selection;
}

type Answer<T> = T | ((input: unknown) => T);

/** Everything the stub records, and the answers it gives; `reset()` between tests. */
export const state = {
  commands: new Map<string, (...args: unknown[]) => unknown>(),
  executed: [] as { command: string; args: unknown[] }[],
  context: new Map<string, unknown>(),
  messages: [] as ShownMessage[],
  messageAnswers: [] as (string | undefined)[],
  inputBoxes: [] as Record<string, unknown>[],
  inputAnswers: [] as Answer<string | undefined>[],
  quickPicks: [] as { items: unknown[]; options: unknown }[],
  quickPickAnswers: [] as Answer<unknown>[],
  progress: [] as ProgressRecord[],
  output: new Map<string, string[]>(),
  shownChannels: [] as string[],
  clipboard: "",
  settings: new Map<string, unknown>(),
  configListeners: new EventEmitter<{ affectsConfiguration(section: string): boolean }>(),
  diagnostics: new Map<string, Diagnostic[]>(),
  textDocuments: [] as FakeDocument[],
  activeTextEditor: undefined as FakeEditor | undefined,
  appliedEdits: [] as { edit: WorkspaceEdit; metadata: unknown }[],
  applyEditAnswers: [] as boolean[],
  documentOpened: new EventEmitter<FakeDocument>(),
  workspaceFolders: [] as { uri: Uri; name: string; index: number }[],
  codeActionProviders: [] as CodeActionProvider[],
  statusBar: { text: "", visible: false },
  openDialogs: [] as Record<string, unknown>[],
  openDialogAnswers: [] as (Uri[] | undefined)[],
  settingsUpdates: [] as { key: string; value: unknown; target: unknown }[],
};

export function reset(): void {
  state.commands.clear();
  state.executed.length = 0;
  state.context.clear();
  state.messages.length = 0;
  state.messageAnswers.length = 0;
  state.inputBoxes.length = 0;
  state.inputAnswers.length = 0;
  state.quickPicks.length = 0;
  state.quickPickAnswers.length = 0;
  state.progress.length = 0;
  state.output.clear();
  state.shownChannels.length = 0;
  state.clipboard = "";
  state.settings.clear();
  state.configListeners.dispose();
  state.diagnostics.clear();
  state.textDocuments.length = 0;
  state.activeTextEditor = undefined;
  state.appliedEdits.length = 0;
  state.applyEditAnswers.length = 0;
  state.documentOpened.dispose();
  state.workspaceFolders.length = 0;
  state.codeActionProviders.length = 0;
  state.statusBar = { text: "", visible: false };
  state.openDialogs.length = 0;
  state.openDialogAnswers.length = 0;
  state.settingsUpdates.length = 0;
}

/** Change settings (keys without the `channelcoder.` prefix) and fire the change event. */
export function changeSettings(changes: Record<string, unknown>): void {
  for (const [key, value] of Object.entries(changes)) {
    state.settings.set(key, value);
  }
  const keys = Object.keys(changes).map((key) => `channelcoder.${key}`);
  state.configListeners.fire({
    affectsConfiguration: (section: string) => keys.some((key) => key === section || key.startsWith(`${section}.`)),
  });
}

function answer<T>(queue: Answer<T>[], input: unknown, fallback: T): T {
  if (queue.length === 0) {
    return fallback;
  }
  const next = queue.shift() as Answer<T>;
  return typeof next === "function" ? (next as (input: unknown) => T)(input) : next;
}

function show(level: ShownMessage["level"]) {
  return async (text: string, ...actions: unknown[]): Promise<string | undefined> => {
    const labels = actions.filter((a): a is string => typeof a === "string");
    state.messages.push({ level, text, actions: labels });
    return state.messageAnswers.shift();
  };
}

function outputChannel(name: string): Record<string, unknown> {
  const lines: string[] = [];
  state.output.set(name, lines);
  const log = (text: string) => lines.push(text);
  return {
    name,
    append: log,
    appendLine: (text: string) => lines.push(`${text}\n`),
    show: () => state.shownChannels.push(name),
    clear: () => (lines.length = 0),
    hide: () => undefined,
    dispose: () => undefined,
    replace: log,
    trace: log,
    debug: log,
    info: log,
    warn: log,
    error: log,
    logLevel: 3,
    onDidChangeLogLevel: new EventEmitter<number>().event,
  };
}

const api = {
  version: "1.91.0",
  EventEmitter,
  TextEdit,
  WorkspaceEdit,
  CancellationTokenSource,
  CancellationError,
  CodeAction,
  CodeActionKind,
  LogLevel,
  Disposable,
  Position,
  Range,
  Selection,
  Uri,
  Diagnostic,
  DiagnosticSeverity,
  ProgressLocation,
  StatusBarAlignment: { Left: 1, Right: 2 },
  ConfigurationTarget: { Global: 1, Workspace: 2, WorkspaceFolder: 3 },
  ThemeColor: class {
    constructor(readonly id: string) {}
  },
  commands: {
    registerCommand(id: string, callback: (...args: unknown[]) => unknown): Disposable {
      if (state.commands.has(id)) {
        throw new Error(`command '${id}' already exists`);
      }
      state.commands.set(id, callback);
      return new Disposable(() => state.commands.delete(id));
    },
    async executeCommand(id: string, ...args: unknown[]): Promise<unknown> {
      state.executed.push({ command: id, args });
      if (id === "setContext") {
        state.context.set(String(args[0]), args[1]);
        return undefined;
      }
      const callback = state.commands.get(id);
      return callback ? callback(...args) : undefined;
    },
  },
  window: {
    get activeTextEditor(): FakeEditor | undefined {
      return state.activeTextEditor;
    },
    showErrorMessage: show("error"),
    showWarningMessage: show("warning"),
    showInformationMessage: show("info"),
    async showInputBox(options: Record<string, unknown> = {}): Promise<string | undefined> {
      state.inputBoxes.push(options);
      const value = answer<string | undefined>(state.inputAnswers, options, undefined);
      const validate = options.validateInput as ((v: string) => string | undefined) | undefined;
      if (value !== undefined && validate?.(value)) {
        return undefined;
      }
      return value;
    },
    async showQuickPick(items: unknown[] | Promise<unknown[]>, options?: unknown): Promise<unknown> {
      const list = await items;
      state.quickPicks.push({ items: list, options });
      return answer<unknown>(state.quickPickAnswers, list, undefined);
    },
    createOutputChannel: (name: string) => outputChannel(name),
    async withProgress<R>(
      options: { title?: string; location: ProgressLocation; cancellable?: boolean },
      task: (progress: { report(value: { message?: string; increment?: number }): void }, token: unknown) => Promise<R>,
    ): Promise<R> {
      const cancelled = new EventEmitter<void>();
      let isCancellationRequested = false;
      const record: ProgressRecord = {
        title: options.title ?? "",
        location: options.location,
        cancellable: options.cancellable ?? false,
        reports: [],
        finished: false,
        cancel: () => {
          isCancellationRequested = true;
          cancelled.fire();
        },
      };
      state.progress.push(record);
      const token = {
        get isCancellationRequested() {
          return isCancellationRequested;
        },
        onCancellationRequested: cancelled.event,
      };
      try {
        return await task({ report: (value) => record.reports.push(value) }, token);
      } finally {
        record.finished = true;
      }
    },
    setStatusBarMessage: () => new Disposable(),
    createStatusBarItem() {
      const item = {
        name: "",
        tooltip: "" as unknown,
        command: "" as unknown,
        backgroundColor: undefined as unknown,
        get text(): string {
          return state.statusBar.text;
        },
        set text(value: string) {
          state.statusBar.text = value;
        },
        show: () => {
          state.statusBar.visible = true;
        },
        hide: () => {
          state.statusBar.visible = false;
        },
        dispose: () => undefined,
      };
      return item;
    },
    async showOpenDialog(options: Record<string, unknown> = {}): Promise<Uri[] | undefined> {
      state.openDialogs.push(options);
      return state.openDialogAnswers.shift();
    },
    visibleTextEditors: [],
    tabGroups: { all: [], onDidChangeTabs: new EventEmitter<unknown>().event },
  },
  workspace: {
    getConfiguration(section?: string) {
      const prefix = section ? `${section}.` : "";
      return {
        async update(key: string, value: unknown, target?: unknown): Promise<void> {
          state.settingsUpdates.push({ key, value, target });
          changeSettings({ [key]: value });
        },
        get<T>(key: string, fallback?: T): T | undefined {
          if (state.settings.has(key)) {
            return state.settings.get(key) as T;
          }
          const contributed = packageJson.contributes.configuration.properties[prefix + key];
          if (contributed && "default" in contributed) {
            return contributed.default as T;
          }
          return fallback;
        },
      };
    },
    onDidChangeConfiguration: (listener: Listener<{ affectsConfiguration(section: string): boolean }>) =>
      state.configListeners.event(listener),
    get textDocuments(): FakeDocument[] {
      return state.textDocuments;
    },
    isTrusted: true,
    get workspaceFolders(): { uri: Uri; name: string; index: number }[] {
      return state.workspaceFolders;
    },
    notebookDocuments: [],
    onDidOpenTextDocument: (listener: Listener<FakeDocument>) => state.documentOpened.event(listener),
    async applyEdit(edit: WorkspaceEdit, metadata?: unknown): Promise<boolean> {
      state.appliedEdits.push({ edit, metadata });
      return state.applyEditAnswers.shift() ?? true;
    },
  },
  languages: {
    getDiagnostics(uri: Uri): Diagnostic[] {
      return state.diagnostics.get(uri.toString()) ?? [];
    },
    registerCodeActionsProvider(_selector: unknown, provider: CodeActionProvider): Disposable {
      state.codeActionProviders.push(provider);
      return new Disposable(() => state.codeActionProviders.splice(state.codeActionProviders.indexOf(provider), 1));
    },
    match(selector: unknown, document: FakeDocument): number {
      const filters = Array.isArray(selector) ? selector : [selector];
      return filters.some((f) => typeof f === "object" && f !== null && (f as { scheme?: string }).scheme === document.uri.scheme) ? 10 : 0;
    },
  },
  env: {
    language: "en",
    appName: "Visual Studio Code",
    openExternal: async () => true,
    clipboard: {
      async writeText(text: string): Promise<void> {
        state.clipboard = text;
      },
    },
  },
};

/**
 * The real vscode-languageclient touches much more of the API than the extension does: any
 * member the stub lacks is a no-op that hands back disposables and events (a class for
 * capitalized names, so `extends vscode.X` works), never undefined.
 */
function fallback(name: string): unknown {
  if (/^[A-Z]/.test(name)) {
    return class {};
  }
  if (/^onDid|^onWill/.test(name)) {
    return new EventEmitter<unknown>().event;
  }
  return (..._args: unknown[]) =>
    new Proxy(new Disposable(), {
      get: (target, key) => (key in target ? (target as unknown as Record<string | symbol, unknown>)[key] : typeof key === "string" ? fallback(key) : undefined),
    });
}

function lenient<T extends object>(target: T): T {
  return new Proxy(target, {
    get(object, key) {
      if (typeof key !== "string" || key in object) {
        const value = (object as Record<string | symbol, unknown>)[key];
        return typeof value === "object" && value !== null && !Array.isArray(value) && /^[a-z]/.test(String(key)) && !(value instanceof EventEmitter)
          ? lenient(value)
          : value;
      }
      return fallback(key);
    },
  });
}

export const vscode = lenient(api);
