/** The active editor as command arguments: document URI, selection and diagnostics, in LSP shapes. */

import * as vscode from "vscode";
import type { Diagnostic as LspDiagnostic, Range as LspRange } from "vscode-languageserver-protocol";

export interface EditorContext {
  uri: string;
  range?: LspRange;
}

/** The active file editor's URI and, when something is selected, the selection. */
export function editorContext(): EditorContext | undefined {
  const editor = vscode.window.activeTextEditor;
  if (!editor || editor.document.uri.scheme !== "file") {
    return undefined;
  }
  const context: EditorContext = { uri: editor.document.uri.toString() };
  if (!editor.selection.isEmpty) {
    context.range = toLspRange(editor.selection);
  }
  return context;
}

export function toLspRange(range: vscode.Range): LspRange {
  return {
    start: { line: range.start.line, character: range.start.character },
    end: { line: range.end.line, character: range.end.character },
  };
}

/** VS Code's severities count from 0 (Error); LSP's from 1. */
export function toLspDiagnostic(diagnostic: vscode.Diagnostic): LspDiagnostic {
  const lsp: LspDiagnostic = {
    range: toLspRange(diagnostic.range),
    message: diagnostic.message,
    severity: (diagnostic.severity + 1) as LspDiagnostic["severity"],
  };
  if (diagnostic.source) {
    lsp.source = diagnostic.source;
  }
  const code = typeof diagnostic.code === "object" ? diagnostic.code.value : diagnostic.code;
  if (code !== undefined) {
    lsp.code = code;
  }
  return lsp;
}

/** Diagnostics touching the cursor line first, then the rest of the file. */
export function diagnosticsNear(editor: vscode.TextEditor): { here: vscode.Diagnostic[]; all: vscode.Diagnostic[] } {
  const all = vscode.languages.getDiagnostics(editor.document.uri);
  const cursor = editor.selection.active;
  const here = all.filter((d) => d.range.start.line <= cursor.line && cursor.line <= d.range.end.line);
  return { here, all };
}
