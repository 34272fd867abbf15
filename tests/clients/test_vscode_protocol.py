"""The VS Code extension's protocol code against the real language server over stdio.

Each test starts the scripted model with its scenario and runs one test of
clients/vscode/test/protocol/server.test.ts, which starts `channelcoder lsp` (found by the
extension's own discovery), initializes it as VS Code would, and drives it with the extension's
JobClient and proposal handler. Natively (`docker: false`), and in the real sandbox (the
bundled image, in the default network mode: the egress proxy, whose upstream is the scripted
model on loopback) where parametrized;
a sandboxed test fails if a container it made outlives it.
"""

from __future__ import annotations

import json
import os
import re
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from tests.clients import vscode_support
from tests.clients.vscode_support import node_run
from tests.conftest import git

from channelcoder.testing.fake_anthropic import Failure, FakeAnthropic, Reply, ToolCall, Turn

vscode_extension = vscode_support.vscode_extension

SERVER = Path(sys.executable).parent / "channelcoder"
NATIVE = {"docker": False, "tools": ["Bash", "Read"], "standby": False}
SANDBOX: dict[str, object] = {"docker": {}, "standby": False}
TRANSLATE = ToolCall("Bash", {"command": "sed -i s/hello/bonjour/ app.py"})

pytestmark = pytest.mark.usefixtures("claude_bin", "vscode_extension")


@pytest.fixture(params=[
    "native",
    pytest.param("sandbox", marks=[pytest.mark.docker, pytest.mark.timeout(1200)]),
])
def settings(request: pytest.FixtureRequest) -> dict[str, Any]:
    """The user's settings for a native or a sandboxed run."""
    if request.param == "native":
        return NATIVE
    request.getfixturevalue("sandbox_image")
    request.getfixturevalue("no_leaked_containers")
    return SANDBOX


def run_node_test(name: str, workspace: Path, settings: dict[str, Any],
                  suite: str = "server") -> str:
    """Run the protocol test called `name…`; fail with its output when it fails."""
    env = {**os.environ,
           "CHANNELCODER_TEST_WORKSPACE": str(workspace),
           "CHANNELCODER_TEST_SERVER_PATH": str(SERVER),
           "CHANNELCODER_TEST_SETTINGS": json.dumps(settings)}
    proc = node_run(["--test", f"--test-name-pattern=^{re.escape(name)}",
                     f"out/test/protocol/{suite}.test.js"], env=env, timeout=280)
    output = proc.stdout + proc.stderr
    assert proc.returncode == 0, output[-8000:]
    assert "# pass 1" in output and "# fail 0" in output, output[-4000:]
    return output


def test_server_advertises_what_the_extension_calls(git_repo: Path) -> None:
    run_node_test("capabilities:", git_repo, NATIVE)


def test_extension_with_real_language_client_runs_a_job(
        scripted: Callable[..., FakeAnthropic], git_repo: Path, settings: dict[str, Any]) -> None:
    """activate() with vscode-languageclient itself: commands, middleware, one notification."""
    scripted([TRANSLATE, Reply("Translated the greeting.")])
    run_node_test("extension:", git_repo, settings, suite="extension")


def test_run_progress_events_and_proposal_applied_to_buffer(
        scripted: Callable[..., FakeAnthropic], git_repo: Path, settings: dict[str, Any]) -> None:
    api = scripted([TRANSLATE, Reply("Translated the greeting.")])
    run_node_test("run:", git_repo, settings)
    assert "File: app.py (with unsaved changes" in api.agent_requests()[0].last_user_text()


@pytest.mark.docker
@pytest.mark.timeout(1200)
@pytest.mark.usefixtures("sandbox_image", "no_leaked_containers")
def test_files_that_run_on_your_machine_are_flagged_in_the_preview(
        scripted: Callable[..., FakeAnthropic], git_repo: Path) -> None:
    """A sandboxed job that edits .husky/pre-commit and the Makefile: the reply, each of their
    hunks in the refactor preview, the warning beside it and the transcript say they run on your
    machine. (Natively the Claude CLI itself refuses to edit .husky/ as a sensitive file.)"""
    (git_repo / "Makefile").write_text("all:\n\techo hi\n")
    (git_repo / ".husky").mkdir()
    (git_repo / ".husky" / "pre-commit").write_text("#!/bin/sh\n")
    git(git_repo, "add", "Makefile", ".husky")
    git(git_repo, "commit", "-q", "-m", "build")
    scripted([Turn([ToolCall("Bash", {"command": "sed -i '$a make lint' .husky/pre-commit"}),
                    ToolCall("Bash", {"command": "sed -i '$a lint:' Makefile"}),
                    TRANSLATE]),
              Reply("Added a lint hook.")])
    run_node_test("hostrun:", git_repo, SANDBOX)


def test_cancel_from_progress_stops_the_job(
        scripted: Callable[..., FakeAnthropic], git_repo: Path, settings: dict[str, Any]) -> None:
    scripted([Turn([Reply("too late")], first_delay=20)])
    output = run_node_test("cancel:", git_repo, settings)
    print(re.findall(r"cancel-seconds [0-9.]+", output))


def test_declined_proposal_reason_becomes_next_turn(
        scripted: Callable[..., FakeAnthropic], git_repo: Path, settings: dict[str, Any]) -> None:
    api = scripted([TRANSLATE, Reply("Translated the greeting."),
                    Reply("Understood, keeping the English greeting.")])
    run_node_test("reject:", git_repo, settings)
    last = api.agent_requests()[-1]
    assert "keep the English greeting" in last.last_user_text()
    assert any("sed -i s/hello/bonjour/" in json.dumps(m) for m in last.messages), \
        "the follow-up continues the same conversation"


def test_stale_buffer_refuses_then_rebased_reoffer_applies(
        scripted: Callable[..., FakeAnthropic], git_repo: Path) -> None:
    scripted([Turn([TRANSLATE], first_delay=1), Reply("Translated the greeting.")])
    run_node_test("stale:", git_repo, NATIVE)


def test_failed_job_and_bad_argument_reach_the_user(
        scripted: Callable[..., FakeAnthropic], git_repo: Path) -> None:
    scripted([Turn([Reply("unreachable")],
                   failure=Failure(status=400, times=0, message="scripted bad request"))])
    run_node_test("failure:", git_repo, NATIVE)


def test_ask_answer_opens_as_document(
        scripted: Callable[..., FakeAnthropic], git_repo: Path) -> None:
    scripted([Reply("It is the greeting constant used by the app.")])
    run_node_test("ask:", git_repo, NATIVE)
