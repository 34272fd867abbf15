/**
 * The integration suite's small test kit, inside the extension host: named tests run in order
 * with a timeout each, the runner's browser endpoint (`eyes`), the scripted model's scenario
 * switch, and waiting for what the user would see.
 */

import { writeFileSync } from "node:fs";

import { SELECTORS, type ControlRequest, type ControlResponse, type TestResult } from "./protocol";

export interface Test {
  name: string;
  timeoutMs: number;
  body: () => Promise<void>;
  /** Runs only when the filter names it: it needs a VS Code session of its own. */
  alone: boolean;
}

const tests: Test[] = [];

export function test(name: string, timeoutMs: number, body: () => Promise<void>, options: { alone?: boolean } = {}): void {
  tests.push({ name, timeoutMs, body, alone: options.alone ?? false });
}

/** Run every registered test (those matching CHANNELCODER_E2E_FILTER) and write the report. */
export async function runAll(): Promise<void> {
  const filter = process.env.CHANNELCODER_E2E_FILTER ? new RegExp(process.env.CHANNELCODER_E2E_FILTER) : undefined;
  const results: TestResult[] = [];
  for (const entry of tests) {
    if (filter ? !filter.test(entry.name) : entry.alone) {
      continue;
    }
    const started = Date.now();
    try {
      await withTimeout(entry.body(), entry.timeoutMs, entry.name);
      results.push({ name: entry.name, ok: true, ms: Date.now() - started });
    } catch (error) {
      await eyes({ op: "screenshot", name: `failed-${entry.name.split(":")[0] ?? "test"}` }).catch(() => undefined);
      const text = error instanceof Error ? (error.stack ?? error.message) : String(error);
      results.push({ name: entry.name, ok: false, ms: Date.now() - started, error: text });
    }
  }
  const file = process.env.CHANNELCODER_E2E_RESULTS;
  if (file) {
    writeFileSync(file, JSON.stringify({ results }));
  }
}

export async function withTimeout<T>(promise: Promise<T>, ms: number, what: string): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new Error(`timed out after ${ms} ms: ${what}`)), ms);
  });
  try {
    return await Promise.race([promise, timeout]);
  } finally {
    clearTimeout(timer);
  }
}

/** Ask the runner to look at or act on the workbench in the browser. */
export async function eyes(request: ControlRequest): Promise<ControlResponse> {
  const url = process.env.CHANNELCODER_E2E_CONTROL;
  if (!url) {
    throw new Error("CHANNELCODER_E2E_CONTROL is not set: run the suite through its runner");
  }
  const response = await fetch(url, { method: "POST", body: JSON.stringify(request) });
  const answer = (await response.json()) as ControlResponse;
  if (!response.ok) {
    throw new Error(`runner: ${answer.error ?? response.status}`);
  }
  return answer;
}

/** Choose the scripted model's scenario for the next jobs (the pytest test serves the switch). */
export async function scenario(name: string): Promise<void> {
  const url = process.env.CHANNELCODER_E2E_MODEL;
  if (!url) {
    throw new Error("CHANNELCODER_E2E_MODEL is not set: run the suite from tests/clients/test_vscode_e2e.py");
  }
  const response = await fetch(url, { method: "POST", body: JSON.stringify({ scenario: name }) });
  if (!response.ok) {
    throw new Error(`scenario ${name}: ${response.status} ${await response.text()}`);
  }
}

/** The ids of this test run's sandbox containers (asked of the pytest test, which has the engine). */
export async function containers(): Promise<string[]> {
  const url = process.env.CHANNELCODER_E2E_MODEL;
  if (!url) {
    throw new Error("CHANNELCODER_E2E_MODEL is not set: run the suite from tests/clients/test_vscode_e2e.py");
  }
  const response = await fetch(url, { method: "POST", body: JSON.stringify({ containers: true }) });
  return (await response.json()) as string[];
}

export async function waitUntil<T>(what: string, timeoutMs: number, probe: () => Promise<T | undefined | false> | T | undefined | false): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  let lastError: unknown;
  for (;;) {
    try {
      const found = await probe();
      if (found !== undefined && found !== false) {
        return found;
      }
    } catch (error) {
      lastError = error;
    }
    if (Date.now() > deadline) {
      const detail = lastError instanceof Error ? ` (last error: ${lastError.message})` : "";
      throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}${detail}`);
    }
    await sleep(150);
  }
}

export function sleep(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}

export async function notifications(): Promise<string[]> {
  return (await eyes({ op: "notifications" })).texts ?? [];
}

/** Wait for a notification toast whose text matches `pattern`; its text. */
export async function notification(pattern: RegExp, timeoutMs = 30_000): Promise<string> {
  return waitUntil(`a notification matching ${pattern} (showing: ${JSON.stringify(await notifications().catch(() => []))})`, timeoutMs, async () =>
    (await notifications()).find((text) => pattern.test(text)),
  );
}

/** Click a button (by its text) in a notification toast. */
export async function clickNotificationButton(text: string, timeoutMs = 15_000): Promise<void> {
  await waitUntil(`a notification button "${text}"`, timeoutMs, async () => (await eyes({ op: "click", selector: SELECTORS.notificationButton, text })).ok || undefined);
}

/** Close every notification toast so the next test reads only its own. */
export async function clearNotifications(vscodeCommands: { executeCommand(command: string): Thenable<unknown> }): Promise<void> {
  await vscodeCommands.executeCommand("notifications.clearAll");
}
