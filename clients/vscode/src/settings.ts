/**
 * VS Code settings -> the server's settings object (docs/lsp.md §1): the *contents* of the
 * `channelcoder` section, camelCase, flat. Client-only keys never reach the server (its loader
 * would report them as unknown), and unset values (null) are left out so the server's own
 * defaults apply.
 */

/** Keys the server understands, in the order the settings table documents them. */
export const SERVER_SETTING_KEYS = [
  "model",
  "maxTurns",
  "permissionMode",
  "tools",
  "disallowedTools",
  "system",
  "appendSystem",
  "session",
  "mcpConfig",
  "timeout",
  "idleTimeout",
  "maxJobs",
  "docker",
  "worktree",
  "apply",
  "verbose",
  "claudePath",
  "logLevel",
  "standby",
] as const;

/** Settings only the extension reads. */
export const CLIENT_SETTING_KEYS = ["serverPath", "revealTranscript", "trace.server"] as const;

export type ServerSettings = Record<string, unknown>;

/** `read(key)` returns the effective value of `channelcoder.<key>` (undefined/null when unset). */
export function toServerSettings(read: (key: string) => unknown): ServerSettings {
  const settings: ServerSettings = {};
  for (const key of SERVER_SETTING_KEYS) {
    const value = read(key);
    if (value === undefined || value === null) {
      continue;
    }
    settings[key] = plain(value);
  }
  settings.streamEvents = true;
  return settings;
}

/** VS Code hands out frozen proxies for object settings; the server gets plain JSON. */
function plain(value: unknown): unknown {
  return typeof value === "object" ? JSON.parse(JSON.stringify(value)) : value;
}
