"""Bad input never crashes the server, stdout is JSON-RPC only, shutdown leaves nothing behind."""

from __future__ import annotations

import json
import os
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from channelcoder.testing.fake_anthropic import FakeAnthropic, Reply, Scenario, ToolCall, Turn
from tests.conftest import git, processes_with
from tests.lsp.rawclient import RawClient
from tests.lsp.test_basics import COMMANDS

pytestmark = pytest.mark.usefixtures("claude_bin")

NATIVE = {"docker": False, "tools": ["Read", "Bash"], "apply": "direct"}
INVALID_PARAMS = -32602


def error_of(reply: dict[str, Any]) -> dict[str, Any]:
    assert "error" in reply, reply
    return dict(reply["error"])


@pytest.fixture
def repo(tmp_path: Path) -> Path:
    root = tmp_path / "repo"
    root.mkdir()
    git(root, "init", "-q", "-b", "main")
    (root / "app.py").write_text("A = 1\n")
    return root


@pytest.fixture
def model() -> Iterator[FakeAnthropic]:
    with FakeAnthropic(Scenario([], final="Scripted answer.")) as api:
        yield api


@pytest.fixture
def client(repo: Path, model: FakeAnthropic) -> Iterator[RawClient]:
    raw = RawClient(env={**model.env(), "DOCKER_HOST": "unix:///nonexistent/docker.sock"})
    raw.initialize(repo, NATIVE)
    yield raw
    raw.close()


def test_bad_input_is_an_error_reply_and_the_server_keeps_serving(client: RawClient,
                                                                  repo: Path) -> None:
    uri = (repo / "app.py").as_uri()
    cases: list[tuple[str, Any, str]] = [
        ("channelcoder.nope", [], "unknown command"),
        ("channelcoder.run", [1, 2], "at most one argument"),
        ("channelcoder.run", ["text"], "at most one argument"),
        ("channelcoder.run", [{}], "needs a prompt"),
        ("channelcoder.run", [{"prompt": 5}], "'prompt' must be"),
        ("channelcoder.run", [{"prompt": "x", "options": {"dockr": True}}], "unknown option"),
        ("channelcoder.run", [{"prompt": "x", "options": {"maxTurns": "many"}}], "max_turns"),
        ("channelcoder.run", [{"prompt": "x", "uri": "file:///etc/passwd"}],
         "outside the workspace"),
        ("channelcoder.run", [{"prompt": "x", "uri": "https://example.com/a.py"}], "file: URI"),
        ("channelcoder.run", [{"prompt": "x", "uri": uri, "range": {
            "start": {"line": 40, "character": 0}, "end": {"line": 41, "character": 0}}}],
         "past the end"),
        ("channelcoder.run", [{"prompt": "x", "uri": uri, "range": {"start": 1}}], "'range'"),
        ("channelcoder.fix", [], "needs a diagnostic"),
        ("channelcoder.fix", [{"uri": uri, "diagnostic": {"message": 3}}], "Diagnostic"),
        ("channelcoder.cancel", [{"jobId": "no-such-job"}], "no job"),
        ("channelcoder.cancel", [{"jobId": "../x"}], "'jobId'"),
        ("channelcoder.applyProposal", [{"jobId": "nothing"}], "no pending proposal"),
        ("channelcoder.rejectProposal", [], "no pending proposal"),
        ("channelcoder.buildImage", [{"force": "yes"}], "'force'"),
        ("channelcoder.run", [{"prompt": "x", "workDoneToken": {"a": 1}}], "workDoneToken"),
    ]
    for command, arguments, expected in cases:
        error = error_of(client.request("workspace/executeCommand",
                                        {"command": command, "arguments": arguments}))
        assert expected in error["message"], (command, arguments, error)
        assert error["code"] == INVALID_PARAMS, error
        assert "Traceback" not in json.dumps(error)
        assert client.request("workspace/executeCommand",
                              {"command": "channelcoder.jobs"})["result"]["jobs"] == []
    malformed = client.request("workspace/executeCommand", {"command": 5, "arguments": "x"})
    assert "error" in malformed
    assert client.process.poll() is None and not client.stray


def test_malformed_settings_are_one_warning_each_and_defaults_are_used(
        repo: Path, model: FakeAnthropic) -> None:
    raw = RawClient(env=model.env())
    try:
        raw.initialize(repo, {"channelcoder": {"docker": False, "timeout": -3, "model": 7,
                                               "unknownKey": 1, "streamEvents": "yes",
                                               "docker.memory": "x"}})
        reply = raw.request("workspace/executeCommand", {"command": "channelcoder.jobs"})
        assert reply["result"] == {"jobs": [], "proposals": []}
        time.sleep(0.2)
        warnings = [n["params"]["message"] for n in raw.notifications
                    if n["method"] == "window/showMessage" and n["params"]["type"] == 2]
        for key in ("wrapped", "'timeout'", "'model'", "'unknownKey'", "'streamEvents'"):
            assert sum(key in w for w in warnings) == 1, (key, warnings)
    finally:
        raw.close()


SITE = """
import atexit, os, sys, threading
def stray():
    print("stray print from some layer")
    os.system("echo stray output of a child process")
    sys.stdout.write("stray write\\n")
if "channelcoder" in " ".join(sys.argv) or os.environ.get("CC_STRAY"):
    threading.Timer(2.0, stray).start()
    atexit.register(lambda: print("stray print at exit"))
"""


def test_stdout_carries_only_json_rpc(repo: Path, model: FakeAnthropic, tmp_path: Path) -> None:
    site = tmp_path / "site"
    site.mkdir()
    (site / "sitecustomize.py").write_text(SITE)
    env = {**model.env(), "PYTHONPATH": os.pathsep.join([str(site), os.environ.get(
        "PYTHONPATH", "")]), "CC_STRAY": "1"}
    raw = RawClient(env=env, args=["--log-level", "debug"])
    raw.initialize(repo, {**NATIVE, "verbose": True, "streamEvents": True})
    reply = raw.request("workspace/executeCommand", {"command": "channelcoder.run", "arguments": [
        {"prompt": "say something"}]})
    assert reply["result"]["ok"] is True, reply
    time.sleep(2.2)
    raw.close()
    assert raw.stray == []
    assert b"stray print from some layer" in raw.stderr
    assert b"stray output of a child process" in raw.stderr


def test_exit_and_closed_stdin_stop_every_job(repo: Path) -> None:
    with FakeAnthropic(Scenario([ToolCall("Bash", {"command": "echo started"}),
                                 Turn([Reply("late")], first_delay=60)])) as api:
        for ending in ("exit", "eof"):
            marker = uuid.uuid4().hex
            raw = RawClient(env=api.env())
            raw.initialize(repo, {**NATIVE, "streamEvents": True})
            raw.send({"jsonrpc": "2.0", "id": "job", "method": "workspace/executeCommand",
                      "params": {"command": "channelcoder.run",
                                 "arguments": [{"prompt": f"slow {marker}"}]}})
            deadline = time.monotonic() + 30
            while not any(n["method"] == "channelcoder/event"
                          and n["params"]["event"]["type"] == "tool-result"
                          for n in list(raw.notifications)):
                assert time.monotonic() < deadline, "the job never ran its tool"
                time.sleep(0.05)
            assert processes_with(marker)
            if ending == "exit":
                raw.request("shutdown", None, timeout=15)
                raw.notify("exit")
                assert raw.wait_exit(15) == 0
            else:
                assert raw.process.stdin is not None
                raw.process.stdin.close()
                assert raw.wait_exit(15) == 1
            assert not processes_with(marker), f"claude outlived the server ({ending})"
            raw.close()
            assert raw.stray == []


JSON = st.recursive(
    st.none() | st.booleans() | st.integers(-5, 10**6) | st.floats(allow_nan=False)
    | st.text(max_size=20),
    lambda children: st.lists(children, max_size=3)
    | st.dictionaries(st.text(max_size=10), children, max_size=3),
    max_leaves=8)
KEYS = st.sampled_from(["prompt", "uri", "range", "options", "jobId", "diagnostic", "reason",
                        "force", "name", "promptFile", "data", "workDoneToken"])
SHAPED = st.dictionaries(KEYS, JSON, max_size=4)
ARGUMENTS = st.one_of(st.just([]), st.lists(JSON, max_size=2), st.tuples(SHAPED).map(list),
                      st.just([{"prompt": "a valid prompt"}]))


@settings(max_examples=50, deadline=None, derandomize=True,
          suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow])
@given(command=st.sampled_from([*sorted(COMMANDS), "channelcoder.unknown"]),
       arguments=ARGUMENTS)
def test_random_json_at_every_command_never_breaks_the_server(
        client: RawClient, command: str, arguments: list[Any]) -> None:
    reply = client.request("workspace/executeCommand",
                           {"command": command, "arguments": arguments}, timeout=120)
    assert ("result" in reply) != ("error" in reply), reply
    if "error" in reply:
        assert reply["error"]["code"] in (INVALID_PARAMS, -32803), reply
        assert "Traceback" not in json.dumps(reply)
    alive = client.request("workspace/executeCommand", {"command": "channelcoder.jobs"})
    assert "result" in alive and client.process.poll() is None
    assert client.stray == []
