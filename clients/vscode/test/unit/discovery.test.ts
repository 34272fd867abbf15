import { strict as assert } from "node:assert";
import { test } from "node:test";

import { activate, extension } from "../helpers/harness";
import { Uri, state } from "../helpers/vscode-stub";
import { findServer, INSTALL_COMMAND, type DiscoveryHost } from "../../src/discovery";

function host(executables: string[], importable: string[] = [], PATH = "/usr/local/bin:/usr/bin"): DiscoveryHost {
  return {
    env: { PATH },
    platform: "linux",
    home: "/home/u",
    isExecutable: (file) => executables.includes(file),
    canImport: (python) => importable.includes(python),
  };
}

test("channelcoder.serverPath wins, with ~ expanded; a Python there runs the module", () => {
  assert.deepEqual(findServer("~/venv/bin/channelcoder", host(["/home/u/venv/bin/channelcoder", "/usr/bin/channelcoder"])), {
    command: "/home/u/venv/bin/channelcoder",
    args: ["lsp"],
    source: "setting",
  });
  assert.deepEqual(findServer("/opt/py/bin/python3.11", host(["/opt/py/bin/python3.11"])), {
    command: "/opt/py/bin/python3.11",
    args: ["-m", "channelcoder", "lsp"],
    source: "setting",
  });
});

test("a serverPath that is not executable is reported, not silently replaced by PATH", () => {
  const found = findServer("/nope/channelcoder", host(["/usr/bin/channelcoder"]));
  assert.ok("missing" in found);
  assert.match(found.message, /serverPath is '\/nope\/channelcoder'/);
});

test("then channelcoder on PATH, then python3 -m channelcoder when it imports", () => {
  assert.deepEqual(findServer(null, host(["/usr/bin/channelcoder", "/usr/bin/python3"], ["/usr/bin/python3"])), {
    command: "/usr/bin/channelcoder",
    args: ["lsp"],
    source: "path",
  });
  assert.deepEqual(findServer("", host(["/usr/bin/python3"], ["/usr/bin/python3"])), {
    command: "/usr/bin/python3",
    args: ["-m", "channelcoder", "lsp"],
    source: "python",
  });
});

test("no server anywhere: the answer carries the install command", () => {
  const found = findServer(undefined, host(["/usr/bin/python3"], []));
  assert.ok("missing" in found);
  assert.equal(found.installCommand, INSTALL_COMMAND);
  assert.match(found.hint, /python3 -m pip install channelcoder/);
});

test("a missing server is one notification with the install command, which can be copied", async () => {
  const missing = findServer(null, host([]));
  assert.ok("missing" in missing);
  const { launches } = await activate({ server: missing, messageAnswers: ["Copy install command"] });
  await new Promise((resolve) => setImmediate(resolve));
  assert.equal(launches.length, 0, "no client is started");
  assert.equal(state.messages.length, 1);
  assert.equal(state.messages[0]?.level, "error");
  assert.match(state.messages[0]?.text ?? "", /python3 -m pip install channelcoder/);
  assert.deepEqual(state.messages[0]?.actions, ["Choose file…", "Copy install command", "Open settings"]);
  assert.match(state.messages[0]?.text ?? "", /channelcoder\.serverPath/, "it names the setting to set");
  assert.equal(state.clipboard, INSTALL_COMMAND);
  assert.notEqual(state.context.get("channelcoder.serverRunning"), true);
});

test("a server that fails to start is one error with a hint; the palette entries stay hidden", async () => {
  const { client } = await activate({ startError: new Error("spawn /opt/channelcoder/bin/channelcoder ENOENT") });
  assert.equal(client.options.initializationFailedHandler?.(new Error("x")), false, "no retry, no second notification from the client");
  assert.equal(state.messages.length, 1);
  assert.match(state.messages[0]?.text ?? "", /did not start: spawn .* ENOENT — run '\/opt\/channelcoder\/bin\/channelcoder doctor'/);
  assert.notEqual(state.context.get("channelcoder.serverRunning"), true);
});

test("deactivating after a failed start is quiet", async () => {
  await activate({ startError: new Error("boom") });
  await extension.deactivate();
  assert.equal(state.messages.length, 1);
});

test("a started server shows the palette entries", async () => {
  await activate();
  assert.equal(state.context.get("channelcoder.serverRunning"), true);
});

test("a missing server: picking the executable writes channelcoder.serverPath to the user settings and starts it", async () => {
  const missing = findServer(null, host([]));
  let found: string | null | undefined;
  const { ext } = await activate({
    messageAnswers: ["Choose file…"],
    openDialogAnswers: [[Uri.file("/home/me/project/.venv/bin/channelcoder")]],
    findServer: (serverPath) => {
      found = serverPath;
      return serverPath ? { command: serverPath, args: ["lsp"], source: "setting" } : missing;
    },
  });
  await ext.reported;
  assert.equal(state.openDialogs.length, 1, "a file picker opened");
  assert.deepEqual(state.settingsUpdates, [{ key: "serverPath", value: "/home/me/project/.venv/bin/channelcoder", target: 1 }], "written to the user (global) settings");
  assert.equal(found, "/home/me/project/.venv/bin/channelcoder", "the server is started with the chosen file");
  assert.equal(state.context.get("channelcoder.serverRunning"), true);
  assert.ok(!state.messages.some((m) => /serverPath changed/.test(m.text)), "no 'restart?' question for a path the user just chose");
});
