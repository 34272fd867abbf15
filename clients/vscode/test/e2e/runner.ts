/**
 * Runs the integration suite (./suite) inside a real VS Code: code-server serves the workbench,
 * headless chromium (driven by puppeteer-core) opens it with the `payload` URL parameter that
 * makes the extension host load this extension in development mode and call the suite's `run()`.
 *
 * While the suite runs, this process serves a loopback "eyes and hands" endpoint the suite calls
 * for what only the browser can do: read the notifications and the refactor preview, click their
 * buttons, type into an input box, save screenshots. It prints `N passed, N failed` and exits 0
 * only when every test passed. Every process it started is stopped before it exits.
 *
 * With `--vsix`, the packaged extension is installed with `--install-extension` (as a user
 * installs it) and the suite runs from a tiny development extension of its own beside it;
 * without, the extension itself is loaded from clients/vscode in development mode.
 *
 * Usage: node out/test/e2e/runner.js --code-server BIN --workspace DIR --scratch DIR
 *        --artefacts DIR --settings JSON [--vsix FILE] [--chromium BIN] [--filter REGEX]
 */

import { type ChildProcess, spawn } from "node:child_process";
import { existsSync, mkdirSync, readFileSync, writeFileSync } from "node:fs";
import { createServer, type IncomingMessage, type Server, type ServerResponse } from "node:http";
import type { AddressInfo } from "node:net";
import * as path from "node:path";

import type { Browser, Page } from "puppeteer-core";

import { SELECTORS, type ControlRequest, type ControlResponse, type SuiteReport } from "./protocol";

interface Options {
  codeServer: string;
  /** A packaged extension to install first; the suite then runs beside it, as a user has it. */
  vsix: string;
  workspace: string;
  scratch: string;
  artefacts: string;
  settings: Record<string, unknown>;
  chromium: string;
  filter: string;
}

const EXTENSION = path.resolve(__dirname, "../../..");
const SUITE_TIMEOUT_MS = Number(process.env.CHANNELCODER_E2E_TIMEOUT_MS ?? 600_000);

function parseArgs(argv: string[]): Options {
  const value = (name: string, fallback?: string): string => {
    const index = argv.indexOf(`--${name}`);
    const found = index >= 0 ? argv[index + 1] : fallback;
    if (found === undefined) {
      throw new Error(`--${name} is required`);
    }
    return found;
  };
  return {
    codeServer: value("code-server"),
    vsix: value("vsix", ""),
    workspace: path.resolve(value("workspace")),
    scratch: path.resolve(value("scratch")),
    artefacts: path.resolve(value("artefacts")),
    settings: JSON.parse(value("settings", "{}")) as Record<string, unknown>,
    chromium: value("chromium", "/usr/bin/chromium"),
    filter: value("filter", ""),
  };
}

/** The little of the DOM that code evaluated in the page touches (no DOM lib in this build). */
interface DomElement {
  readonly innerText: string;
  readonly title: string;
  readonly offsetParent: unknown;
  getAttribute(name: string): string | null;
  getClientRects(): { length: number };
}

async function freePort(): Promise<number> {
  const server = createServer();
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  const { port } = server.address() as AddressInfo;
  await new Promise<void>((resolve) => server.close(() => resolve()));
  return port;
}

async function waitFor<T>(what: string, timeoutMs: number, probe: () => Promise<T | undefined>): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const found = await probe().catch(() => undefined);
    if (found !== undefined) {
      return found;
    }
    if (Date.now() > deadline) {
      throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}`);
    }
    await new Promise((resolve) => setTimeout(resolve, 200));
  }
}

function codeServerArgs(options: Options): string[] {
  return [
    options.codeServer,
    "--disable-telemetry",
    "--disable-update-check",
    "--user-data-dir", path.join(options.scratch, "user-data"),
    "--extensions-dir", path.join(options.scratch, "extensions"),
  ];
}

/** Install the packaged extension into the scratch extensions folder (code-server's CLI). */
async function installVsix(options: Options, env: NodeJS.ProcessEnv): Promise<void> {
  const child = spawn(process.execPath, [...codeServerArgs(options), "--install-extension", options.vsix], { env, stdio: ["ignore", "pipe", "pipe"] });
  const output: Buffer[] = [];
  child.stdout?.on("data", (chunk: Buffer) => output.push(chunk));
  child.stderr?.on("data", (chunk: Buffer) => output.push(chunk));
  const code = await new Promise<number | null>((resolve) => child.on("exit", resolve));
  const text = Buffer.concat(output).toString("utf8");
  writeFileSync(path.join(options.artefacts, "install-extension.log"), text);
  if (code !== 0 || !/successfully installed/i.test(text)) {
    throw new Error(`--install-extension ${options.vsix} failed (${code}): ${text.slice(-2000)}`);
  }
}

/** The development extension that only carries the suite, when the real one is installed. */
function suiteCarrier(options: Options): string {
  const dir = path.join(options.scratch, "suite-carrier");
  mkdirSync(dir, { recursive: true });
  writeFileSync(
    path.join(dir, "package.json"),
    JSON.stringify({ name: "channelcoder-e2e-suite", publisher: "channelcoder-tests", version: "0.0.1", engines: { vscode: "^1.91.0" } }),
  );
  return dir;
}

/** code-server with its own config, data and extension folders under `scratch`. */
function startCodeServer(options: Options, port: number, env: NodeJS.ProcessEnv): ChildProcess {
  const user = path.join(options.scratch, "user-data");
  mkdirSync(path.join(user, "User"), { recursive: true });
  writeFileSync(
    path.join(user, "User", "settings.json"),
    JSON.stringify(
      {
        "workbench.startupEditor": "none",
        "workbench.tips.enabled": false,
        "workbench.enableExperiments": false,
        "telemetry.telemetryLevel": "off",
        "security.workspace.trust.enabled": false,
        "extensions.autoUpdate": false,
        "extensions.autoCheckUpdates": false,
        "update.mode": "none",
        "git.enabled": false,
        "window.restoreWindows": "none",
        "editor.lightbulb.enabled": "off",
        ...options.settings,
      },
      null,
      2,
    ),
  );
  const child = spawn(
    process.execPath,
    [
      ...codeServerArgs(options),
      "--auth", "none",
      "--bind-addr", `127.0.0.1:${port}`,
      "--disable-workspace-trust",
      "--disable-getting-started-override",
      options.workspace,
    ],
    { env, stdio: ["ignore", "pipe", "pipe"], detached: true },
  );
  const log = path.join(options.artefacts, "code-server.log");
  const chunks: Buffer[] = [];
  child.stdout?.on("data", (chunk: Buffer) => chunks.push(chunk));
  child.stderr?.on("data", (chunk: Buffer) => chunks.push(chunk));
  child.on("exit", () => writeFileSync(log, Buffer.concat(chunks)));
  process.on("exit", () => writeFileSync(log, Buffer.concat(chunks)));
  return child;
}

/** Stop a process group we started: SIGTERM, then SIGKILL what is left after `graceMs`. */
async function stopGroup(child: ChildProcess | undefined, graceMs: number): Promise<void> {
  if (!child?.pid || child.exitCode !== null || child.signalCode !== null) {
    return;
  }
  const exited = new Promise<void>((resolve) => child.once("exit", () => resolve()));
  try {
    process.kill(-child.pid, "SIGTERM");
  } catch {
    return;
  }
  const timer = new Promise<"late">((resolve) => setTimeout(() => resolve("late"), graceMs));
  if ((await Promise.race([exited.then(() => "ok" as const), timer])) === "late") {
    try {
      process.kill(-child.pid, "SIGKILL");
    } catch {
      // already gone
    }
    await exited;
  }
  // The group may outlive its leader for a moment (the extension host, the language server).
  const deadline = Date.now() + graceMs;
  while (Date.now() < deadline && groupAlive(child.pid)) {
    await new Promise((resolve) => setTimeout(resolve, 100));
  }
  if (groupAlive(child.pid)) {
    try {
      process.kill(-child.pid, "SIGKILL");
    } catch {
      // gone meanwhile
    }
  }
}

function groupAlive(pgid: number): boolean {
  try {
    process.kill(-pgid, 0);
    return true;
  } catch {
    return false;
  }
}

/** The endpoint the suite calls for the browser's side of a test. */
class Eyes {
  private shots = 0;

  constructor(
    private readonly page: Page,
    private readonly artefacts: string,
  ) {}

  async handle(request: ControlRequest): Promise<ControlResponse> {
    switch (request.op) {
      case "notifications":
        return { ok: true, texts: await this.texts(SELECTORS.notification) };
      case "texts":
        return { ok: true, texts: await this.texts(request.selector) };
      case "html":
        return { ok: true, texts: await this.page.$$eval(request.selector, (nodes) => nodes.map((node) => (node as unknown as { outerHTML: string }).outerHTML)) };
      case "click":
        return { ok: await this.click(request.selector, request.text) };
      case "type":
        if (request.replace) {
          await this.page.keyboard.down("Control");
          await this.page.keyboard.press("KeyA");
          await this.page.keyboard.up("Control");
        }
        await this.page.keyboard.type(request.text, { delay: 5 });
        if (request.enter) {
          await this.page.keyboard.press("Enter");
        }
        return { ok: true };
      case "key":
        await this.page.keyboard.press(request.key as never);
        return { ok: true };
      case "screenshot": {
        this.shots += 1;
        const file = path.join(this.artefacts, `${String(this.shots).padStart(2, "0")}-${request.name.replace(/[^a-z0-9_-]+/gi, "-")}.png`);
        await this.page.screenshot({ path: file as `${string}.png` });
        return { ok: true, file };
      }
    }
  }

  private async texts(selector: string): Promise<string[]> {
    return this.page.$$eval(selector, (nodes) => nodes.map((node) => (node as unknown as DomElement).innerText.trim()));
  }

  /** Click the first visible element matching `selector` whose text (or aria-label) includes `text`. */
  private async click(selector: string, text: string | undefined): Promise<boolean> {
    const handles = await this.page.$$(selector);
    for (const handle of handles) {
      const matches = await handle.evaluate((node, wanted) => {
        const element = node as unknown as DomElement;
        const visible = element.offsetParent !== null || element.getClientRects().length > 0;
        const label = `${element.innerText ?? ""} ${element.getAttribute("aria-label") ?? ""} ${element.title ?? ""}`;
        return visible && (wanted === null || label.includes(wanted));
      }, text ?? null);
      if (matches) {
        await handle.click();
        return true;
      }
    }
    return false;
  }
}

function serveEyes(eyes: () => Eyes | undefined): Promise<{ server: Server; url: string }> {
  const server = createServer((req: IncomingMessage, res: ServerResponse) => {
    const body: Buffer[] = [];
    req.on("data", (chunk: Buffer) => body.push(chunk));
    req.on("end", () => {
      const reply = (status: number, payload: ControlResponse): void => {
        res.writeHead(status, { "content-type": "application/json" });
        res.end(JSON.stringify(payload));
      };
      const target = eyes();
      if (!target) {
        reply(503, { ok: false, error: "the browser is not ready" });
        return;
      }
      let request: ControlRequest;
      try {
        request = JSON.parse(Buffer.concat(body).toString("utf8")) as ControlRequest;
      } catch (error) {
        reply(400, { ok: false, error: String(error) });
        return;
      }
      target.handle(request).then(
        (answer) => reply(200, answer),
        (error: unknown) => reply(500, { ok: false, error: error instanceof Error ? error.message : String(error) }),
      );
    });
  });
  return new Promise((resolve) => {
    server.listen(0, "127.0.0.1", () => {
      const { port } = server.address() as AddressInfo;
      resolve({ server, url: `http://127.0.0.1:${port}` });
    });
  });
}

async function main(): Promise<number> {
  const options = parseArgs(process.argv.slice(2));
  mkdirSync(options.artefacts, { recursive: true });
  mkdirSync(options.scratch, { recursive: true });
  const resultsFile = path.join(options.scratch, "results.json");
  let eyes: Eyes | undefined;
  const control = await serveEyes(() => eyes);
  const port = await freePort();
  const env: NodeJS.ProcessEnv = {
    ...process.env,
    XDG_CONFIG_HOME: path.join(options.scratch, "config"),
    XDG_DATA_HOME: path.join(options.scratch, "data"),
    XDG_CACHE_HOME: path.join(options.scratch, "cache"),
    CHANNELCODER_E2E_CONTROL: control.url,
    CHANNELCODER_E2E_RESULTS: resultsFile,
    CHANNELCODER_E2E_FILTER: options.filter,
    CHANNELCODER_E2E_WORKSPACE: options.workspace,
    CHANNELCODER_E2E_EXTENSIONS: options.vsix ? path.join(options.scratch, "extensions") : "",
  };
  let codeServer: ChildProcess | undefined;
  let browser: Browser | undefined;
  const browserLog: string[] = [];
  try {
    if (options.vsix) {
      await installVsix(options, env);
    }
    codeServer = startCodeServer(options, port, env);
    const base = `http://127.0.0.1:${port}`;
    await waitFor("code-server to listen", 60_000, async () => ((await fetch(`${base}/healthz`)).ok ? true : undefined));

    const puppeteer = await import("puppeteer-core");
    browser = await puppeteer.launch({
      executablePath: options.chromium,
      headless: true,
      args: ["--no-sandbox", "--disable-dev-shm-usage", "--disable-gpu", "--window-size=1400,900"],
      defaultViewport: { width: 1400, height: 900 },
      // Under the scratch folder, so a leftover chromium is found by its command line.
      userDataDir: path.join(options.scratch, "chromium-profile"),
      env: { ...process.env, XDG_CONFIG_HOME: path.join(options.scratch, "chromium-config") },
    });
    const page = await browser.newPage();
    page.on("console", (message) => browserLog.push(`${message.type()}: ${message.text()}`));
    eyes = new Eyes(page, options.artefacts);

    const remote = (file: string): string => `vscode-remote://127.0.0.1:${port}${file}`;
    const payload = [
      ["extensionDevelopmentPath", remote(options.vsix ? suiteCarrier(options) : EXTENSION)],
      ["extensionTestsPath", remote(path.join(EXTENSION, "out/test/e2e/suite.js"))],
    ];
    const url = `${base}/?folder=${encodeURIComponent(options.workspace)}&payload=${encodeURIComponent(JSON.stringify(payload))}`;
    await page.goto(url, { waitUntil: "domcontentloaded", timeout: 60_000 });

    const report = await waitFor<SuiteReport>("the suite's results", SUITE_TIMEOUT_MS, async () =>
      existsSync(resultsFile) ? (JSON.parse(readFileSync(resultsFile, "utf8")) as SuiteReport) : undefined,
    );
    for (const result of report.results) {
      const mark = result.ok ? "ok" : "not ok";
      process.stdout.write(`${mark} - ${result.name} (${(result.ms / 1000).toFixed(1)} s)\n`);
      if (!result.ok && result.error) {
        process.stdout.write(`  ${result.error.replace(/\n/g, "\n  ")}\n`);
      }
    }
    const passed = report.results.filter((result) => result.ok).length;
    const failed = report.results.length - passed;
    process.stdout.write(`${passed} passed, ${failed} failed\n`);
    return failed === 0 && passed > 0 ? 0 : 1;
  } catch (error) {
    process.stdout.write(`runner: ${error instanceof Error ? error.stack ?? error.message : String(error)}\n`);
    if (eyes) {
      await eyes.handle({ op: "screenshot", name: "runner-failure" }).catch(() => undefined);
    }
    process.stdout.write("0 passed, 1 failed\n");
    return 1;
  } finally {
    writeFileSync(path.join(options.artefacts, "browser-console.log"), browserLog.join("\n"));
    await browser?.close().catch(() => undefined);
    await stopGroup(codeServer, 10_000);
    control.server.close();
  }
}

main().then(
  (code) => process.exit(code),
  (error: unknown) => {
    process.stderr.write(`${String(error)}\n`);
    process.exit(2);
  },
);
