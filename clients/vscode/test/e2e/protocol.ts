/**
 * What the suite (in the extension host) and the runner (beside the browser) say to each other:
 * the runner's loopback endpoint takes one JSON request per call, and the suite leaves its
 * report in a file the runner reads. Selectors are VS Code 1.100's workbench DOM.
 */

export type ControlRequest =
  | { op: "notifications" }
  | { op: "texts"; selector: string }
  | { op: "html"; selector: string }
  | { op: "click"; selector: string; text?: string }
  | { op: "type"; text: string; enter?: boolean; replace?: boolean }
  | { op: "key"; key: string }
  | { op: "screenshot"; name: string };

export interface ControlResponse {
  ok: boolean;
  texts?: string[];
  file?: string;
  error?: string;
}

export interface TestResult {
  name: string;
  ok: boolean;
  ms: number;
  error?: string;
}

export interface SuiteReport {
  results: TestResult[];
}

export const SELECTORS = {
  /** One notification toast (message, source and buttons). */
  notification: ".notifications-toasts .notification-toast .notification-list-item",
  notificationButton: ".notifications-toasts .notification-toast .notification-list-item .monaco-button",
  /** The refactor preview's Apply / Discard buttons and its tree rows. */
  previewButton: ".bulk-edit-panel .monaco-button",
  previewRow: ".bulk-edit-panel .monaco-list-row",
  /** A file's (or a group's) checkbox in the preview: VS Code leaves edits that need
   * confirmation unticked, so the user ticks what they accept. */
  previewTopCheckbox: ".bulk-edit-panel .monaco-list-row[aria-level=\"1\"] input.edit-checkbox",
  /** The quick input (command palette, input box) and its rows. */
  quickInput: ".quick-input-widget",
  quickInputRow: ".quick-input-widget .monaco-list-row",
  quickInputMessage: ".quick-input-widget .quick-input-message",
  statusBarItem: ".statusbar-item",
} as const;
