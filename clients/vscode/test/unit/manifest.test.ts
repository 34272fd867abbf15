import { strict as assert } from "node:assert";
import { existsSync, readFileSync } from "node:fs";
import * as path from "node:path";
import { test } from "node:test";

import { activate } from "../helpers/harness";
import { packageJson, state } from "../helpers/vscode-stub";
import { CLIENT_COMMANDS, SERVER_COMMANDS } from "../../src/ids";
import { CLIENT_SETTING_KEYS, SERVER_SETTING_KEYS } from "../../src/settings";

const root = path.join(__dirname, "../../..");
const serverIds = new Set<string>(Object.values(SERVER_COMMANDS));
const contributed = packageJson.contributes.commands;

test("every contributed command has a handler: registered by the extension or a server command", async () => {
  await activate();
  const missing = contributed
    .map((c) => c.command)
    .filter((id) => !state.commands.has(id) && !serverIds.has(id));
  assert.deepEqual(missing, []);
});

test("the extension never registers a server command id (vscode-languageclient does, and a second registration throws)", async () => {
  await activate();
  const clashes = [...state.commands.keys()].filter((id) => serverIds.has(id));
  assert.deepEqual(clashes, []);
  assert.deepEqual(
    Object.values(CLIENT_COMMANDS).filter((id) => !state.commands.has(id)),
    [],
    "every client command id is registered",
  );
});

test("the palette offers the issue's commands under the Claude category", () => {
  const titles = new Map(contributed.map((c) => [c.title, c]));
  for (const title of ["Ask…", "Run in sandbox…", "Fix diagnostic", "Explain selection", "Cancel job", "Show jobs", "Build sandbox image", "Doctor"]) {
    assert.ok(titles.has(title), `missing palette entry '${title}'`);
  }
  assert.deepEqual(contributed.filter((c) => c.category !== "Claude").map((c) => c.command), []);
  assert.equal(titles.get("Build sandbox image")?.command, SERVER_COMMANDS.buildImage);
  assert.equal(titles.get("Doctor")?.command, SERVER_COMMANDS.doctor);
});

test("menus only name contributed commands; server ids are hidden until the server runs", () => {
  const ids = new Set(contributed.map((c) => c.command));
  for (const [menu, entries] of Object.entries(packageJson.contributes.menus)) {
    for (const entry of entries) {
      assert.ok(ids.has(entry.command), `${menu} names unknown command ${entry.command}`);
    }
  }
  const palette = new Map(packageJson.contributes.menus.commandPalette!.map((e) => [e.command, e.when ?? ""]));
  for (const c of contributed.filter((c) => serverIds.has(c.command))) {
    assert.match(palette.get(c.command) ?? "", /channelcoder\.serverRunning/, `${c.command} must wait for the server`);
  }
});

test("settings mirror the server's options: every key documented, nothing unmapped", () => {
  const properties = Object.keys(packageJson.contributes.configuration.properties).map((k) => k.replace(/^channelcoder\./, ""));
  const known = new Set<string>([...SERVER_SETTING_KEYS, ...CLIENT_SETTING_KEYS]);
  assert.deepEqual(properties.filter((k) => !known.has(k)), [], "settings the extension would silently ignore");
  assert.deepEqual([...known].filter((k) => !properties.includes(k)), [], "mapped keys without a contributed setting");
  for (const restricted of packageJson.capabilities.untrustedWorkspaces.restrictedConfigurations) {
    assert.ok(properties.includes(restricted.replace(/^channelcoder\./, "")), `${restricted} is not a setting`);
  }
  assert.ok(packageJson.capabilities.untrustedWorkspaces.restrictedConfigurations.includes("channelcoder.serverPath"));
});

test("the manifest's entry point is built and dependencies are locked", () => {
  assert.ok(existsSync(path.join(root, String(packageJson.main))), `${String(packageJson.main)} is not built`);
  assert.equal((packageJson.engines as { vscode: string }).vscode, "^1.91.0");
  const lock = JSON.parse(readFileSync(path.join(root, "package-lock.json"), "utf8")) as {
    packages: Record<string, { version: string }>;
  };
  assert.match(lock.packages["node_modules/vscode-languageclient"]?.version ?? "", /^11\./);
  assert.match(lock.packages["node_modules/@vscode/vsce"]?.version ?? "", /^3\.9\./);
});
