"""Warm sessions and the standby in `proxy` network mode: real engine, CLI, scripted model.

A kept-warm container outlives the process that made it, and so would its way out: the egress
proxy is served only by the process holding the container (a turn, or the language server's
standby). Between turns nothing listens, so what a job left running has no network at all.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from channelcoder.sandbox.container.egress_link import SOCKET_NAME
from channelcoder.testing.fake_anthropic import DUMMY_KEY, Reply, ToolCall
from tests.lsp.conftest import Start
from tests.lsp.test_proposals import SED
from tests.warm.helpers import session_container, wait_gone, warm_containers, warm_dir
from tests.warm.test_standby import FIXED, fix, standby_ready, statuses

pytestmark = [pytest.mark.docker, pytest.mark.usefixtures("claude_bin", "no_leaked_containers")]

GUARD = 120.0
SHOW_KEY = {"command": "echo key=$ANTHROPIC_API_KEY"}
BLOCKED = {"command": "curl -sS -m 5 https://example.com -o /dev/null; echo exit=$?"}


def cli(workspace: Path, image: str, prompt: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "channelcoder", "run", "--session", "proxied", "--docker-image",
         image, "--network", "proxy", "-p", prompt],
        cwd=workspace, env=dict(os.environ), capture_output=True, text=True, timeout=GUARD)


def test_a_warm_session_gets_its_way_out_from_each_turns_process_and_none_between(
        scripted: Any, sandbox_image: str, git_repo: Path, docker_client: Any) -> None:
    api = scripted([ToolCall("Bash", SHOW_KEY), Reply("Looked."),
                    ToolCall("Bash", BLOCKED), Reply("Blocked, as expected.")])
    first = cli(git_repo, sandbox_image, "show the key")
    assert first.returncode == 0, first.stderr
    container = session_container(docker_client, "proxied")
    socket = warm_dir(warm_containers(docker_client)[0]) / "egress" / SOCKET_NAME
    assert not socket.exists()  # kept warm, with no way out until the next turn
    # the next turn is another process: it serves the same container's proxy and hears of
    # what it refuses
    second = cli(git_repo, sandbox_image, "fetch example.com")
    assert second.returncode == 0, second.stderr
    assert session_container(docker_client, "proxied") == container
    assert "network: blocked example.com:443" in second.stderr
    assert "Blocked, as expected." in second.stdout
    requests = api.agent_requests()
    assert "key=sk-ant-api03-channelcoder-placeholder" in "\n".join(requests[1].texts())
    assert {r.headers.get("x-api-key") for r in requests} == {DUMMY_KEY}
    assert not socket.exists()
    done = subprocess.run([sys.executable, "-m", "channelcoder", "sessions", "rm", "proxied"],
                          cwd=git_repo, capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr
    wait_gone(docker_client, container)


async def test_the_standby_serves_a_job_through_the_proxy(
        scripted: Any, lsp: Start, workspace: Path, sandbox_image: str,
        docker_client: Any) -> None:
    api = scripted([ToolCall("Bash", {"command": f"echo key=$ANTHROPIC_API_KEY; {SED['command']}"}),
                    Reply("Made the greeting longer.")])
    session = await lsp(workspace, init={"docker": {"image": sandbox_image, "network": "proxy"},
                                         "streamEvents": True})
    standby = await standby_ready(docker_client)
    uri = session.editor.open(workspace / "app.py")
    reply = await fix(session, uri)
    assert f"using the standby sandbox {standby[:12]}" in statuses(session, reply["jobId"])
    await session.editor.wait_edit()
    assert session.editor.buffers[uri].text == FIXED
    requests = api.agent_requests()
    assert "key=sk-ant-api03-channelcoder-placeholder" in "\n".join(requests[-1].texts())
    assert {r.headers.get("x-api-key") for r in requests} == {DUMMY_KEY}
