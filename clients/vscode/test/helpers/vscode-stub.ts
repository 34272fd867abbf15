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

export const vscode = {
  EventEmitter,
  Disposable,
  Position,
  Range,
  Selection,
  Uri,
  Diagnostic,
  DiagnosticSeverity,
  ProgressLocation,
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
  },
  workspace: {
    getConfiguration(section?: string) {
      const prefix = section ? `${section}.` : "";
      return {
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
    workspaceFolders: [],
  },
  languages: {
    getDiagnostics(uri: Uri): Diagnostic[] {
      return state.diagnostics.get(uri.toString()) ?? [];
    },
  },
  env: {
    clipboard: {
      async writeText(text: string): Promise<void> {
        state.clipboard = text;
      },
    },
  },
};
