/**
 * Finding the language server: the `channelcoder.serverPath` setting, else `channelcoder` on
 * PATH, else `python -m channelcoder` with a Python that can import it. A miss is one answer
 * carrying the install command, never an exception.
 */

import { spawnSync } from "node:child_process";
import { accessSync, constants, statSync } from "node:fs";
import { homedir } from "node:os";
import * as path from "node:path";

export interface ServerLaunch {
  readonly command: string;
  readonly args: readonly string[];
  readonly source: "setting" | "path" | "python";
}

export interface ServerMissing {
  readonly missing: true;
  readonly message: string;
  readonly hint: string;
  readonly installCommand: string;
}

export const INSTALL_COMMAND = "python3 -m pip install channelcoder";

export interface DiscoveryHost {
  readonly env: NodeJS.ProcessEnv;
  readonly platform: NodeJS.Platform;
  readonly home: string;
  isExecutable(file: string): boolean;
  /** Whether `python -c "import channelcoder"` succeeds. */
  canImport(python: string): boolean;
}

export function findServer(serverPath: string | null | undefined, host: DiscoveryHost = systemHost()): ServerLaunch | ServerMissing {
  const configured = (serverPath ?? "").trim();
  if (configured) {
    const file = expandHome(configured, host.home);
    if (!host.isExecutable(file)) {
      return {
        missing: true,
        message: `channelcoder.serverPath is '${configured}', which is not an executable file.`,
        hint: "Point it at the channelcoder executable (for example .venv/bin/channelcoder) or clear it to search PATH.",
        installCommand: INSTALL_COMMAND,
      };
    }
    const args = isPython(file) ? ["-m", "channelcoder", "lsp"] : ["lsp"];
    return { command: file, args, source: "setting" };
  }
  const onPath = which("channelcoder", host);
  if (onPath) {
    return { command: onPath, args: ["lsp"], source: "path" };
  }
  for (const name of host.platform === "win32" ? ["py", "python"] : ["python3", "python"]) {
    const python = which(name, host);
    if (python && host.canImport(python)) {
      return { command: python, args: ["-m", "channelcoder", "lsp"], source: "python" };
    }
  }
  return {
    missing: true,
    message: "The channelcoder language server was not found (no channelcoder on the PATH VS Code sees, no Python there that can import it).",
    hint: `If it is installed in a virtual environment, set channelcoder.serverPath to its executable (e.g. .venv/bin/channelcoder); else install it with '${INSTALL_COMMAND}'.`,
    installCommand: INSTALL_COMMAND,
  };
}

export function which(name: string, host: DiscoveryHost): string | undefined {
  const dirs = (host.env.PATH ?? host.env.Path ?? "").split(host.platform === "win32" ? ";" : ":");
  const suffixes = host.platform === "win32" ? ["", ".exe", ".cmd", ".bat"] : [""];
  for (const dir of dirs) {
    if (!dir) {
      continue;
    }
    for (const suffix of suffixes) {
      const candidate = path.join(dir, name + suffix);
      if (host.isExecutable(candidate)) {
        return candidate;
      }
    }
  }
  return undefined;
}

function expandHome(file: string, home: string): string {
  if (file === "~") {
    return home;
  }
  if (file.startsWith("~/") || file.startsWith("~\\")) {
    return path.join(home, file.slice(2));
  }
  return file;
}

function isPython(file: string): boolean {
  return /^(python[0-9.]*|py)(\.exe)?$/i.test(path.basename(file));
}

export function systemHost(): DiscoveryHost {
  return {
    env: process.env,
    platform: process.platform,
    home: homedir(),
    isExecutable(file: string): boolean {
      try {
        if (!statSync(file).isFile()) {
          return false;
        }
        accessSync(file, constants.X_OK);
        return true;
      } catch {
        return false;
      }
    },
    canImport(python: string): boolean {
      const probe = spawnSync(python, ["-c", "import channelcoder"], { stdio: "ignore", timeout: 10_000 });
      return probe.status === 0;
    },
  };
}
