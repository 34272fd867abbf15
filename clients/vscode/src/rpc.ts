/**
 * The slice of a JSON-RPC connection the extension's protocol code uses. Both
 * vscode-languageclient's LanguageClient and vscode-languageserver-protocol's ProtocolConnection
 * provide it, so the same code runs in VS Code and in the protocol test against the real server.
 */

import type { CancellationToken, ProgressType } from "vscode-languageserver-protocol";

export interface Disposable {
  dispose(): void;
}

export interface Rpc {
  sendRequest<R>(method: string, params: unknown, token?: CancellationToken): Promise<R>;
  sendNotification(method: string, params: unknown): Promise<void>;
  onNotification(method: string, handler: (params: unknown) => void): Disposable;
  onProgress<P>(type: ProgressType<P>, token: string | number, handler: (params: P) => void): Disposable;
}
