import { strict as assert } from "node:assert";
import { test } from "node:test";

import { CancellationToken } from "vscode-languageserver-protocol";

import { activate, settle } from "../helpers/harness";
import { changeSettings, state } from "../helpers/vscode-stub";
import { toServerSettings } from "../../src/settings";

function initializationOptions(options: unknown): Record<string, unknown> {
  return (typeof options === "function" ? options() : options) as Record<string, unknown>;
}

test("unset settings are left to the server; events are always streamed", async () => {
  const { client } = await activate();
  assert.deepEqual(initializationOptions(client.options.initializationOptions), {
    disallowedTools: [],
    verbose: false,
    streamEvents: true,
  });
});

test("settings reach the server camelCase and flat as initializationOptions, client-only keys stay home", async () => {
  const { client } = await activate({
    settings: {
      model: "claude-sonnet-4-5",
      maxTurns: 7,
      docker: { network: "none", memory: "2g" },
      apply: "direct",
      tools: ["Read", "Bash(git log:*)"],
      serverPath: "/somewhere/channelcoder",
      revealTranscript: false,
      "trace.server": "verbose",
    },
  });
  const options = initializationOptions(client.options.initializationOptions);
  assert.equal(options.model, "claude-sonnet-4-5");
  assert.equal(options.maxTurns, 7);
  assert.deepEqual(options.docker, { network: "none", memory: "2g" });
  assert.equal(options.apply, "direct");
  assert.deepEqual(options.tools, ["Read", "Bash(git log:*)"]);
  for (const clientOnly of ["serverPath", "revealTranscript", "trace.server", "trace"]) {
    assert.ok(!(clientOnly in options), `${clientOnly} must not reach the server`);
  }
});

test("workspace/configuration for section channelcoder answers the same mapped settings", async () => {
  const { client } = await activate({ settings: { model: "m1", serverPath: "/x" } });
  const configuration = client.options.middleware?.workspace?.configuration;
  assert.ok(configuration);
  const answer = await configuration({ items: [{ section: "channelcoder" }] }, CancellationToken.None, () => {
    throw new Error("VS Code's own answer would include client-only keys");
  });
  assert.deepEqual(answer, [{ model: "m1", disallowedTools: [], verbose: false, streamEvents: true }]);
});

test("a changed setting is pushed with workspace/didChangeConfiguration", async () => {
  const { client } = await activate();
  changeSettings({ maxJobs: 3, docker: false });
  const sent = client.notifications.filter((n) => n.method === "workspace/didChangeConfiguration");
  assert.equal(sent.length, 1);
  const settings = (sent[0]?.params as { settings: { channelcoder: Record<string, unknown> } }).settings.channelcoder;
  assert.equal(settings.maxJobs, 3);
  assert.equal(settings.docker, false);
});

test("changing serverPath offers a restart instead of sending it to the server", async () => {
  const { client, launches } = await activate();
  state.messageAnswers.push("Restart server");
  changeSettings({ serverPath: "/new/channelcoder" });
  await settle();
  assert.equal(client.notifications.filter((n) => n.method === "workspace/didChangeConfiguration").length, 0);
  assert.match(state.messages[0]?.text ?? "", /serverPath changed/);
  assert.ok(client.stopped, "the old server is stopped");
  assert.equal(launches.length, 2, "a new server is started");
});

test("object settings are passed as plain JSON", () => {
  const frozen = Object.freeze({ env: Object.freeze({ A: "1" }) });
  const settings = toServerSettings((key) => (key === "docker" ? frozen : null));
  assert.deepEqual(settings, { docker: { env: { A: "1" } }, streamEvents: true });
  assert.notEqual(settings.docker, frozen);
});

test("the language client never forwards the channelcoder section itself (it would carry client-only keys)", async () => {
  const { client } = await activate({ settings: { serverPath: "/x", revealTranscript: false } });
  const middleware = client.options.middleware?.workspace?.didChangeConfiguration;
  assert.ok(middleware, "a didChangeConfiguration middleware is installed");
  const forwarded: (string[] | undefined)[] = [];
  const next = async (sections: string[] | undefined): Promise<void> => {
    forwarded.push(sections);
  };
  await middleware(["channelcoder"], next);
  await middleware(["channelcoder.docker"], next);
  await middleware(["channelcoder", "files"], next);
  await middleware(undefined, next);
  assert.deepEqual(forwarded, [["files"], undefined]);
});
