"""Containers that belong to a process end within seconds of its SIGKILL, with no other
channelcoder process started: a language server's job container and its standby sandbox, and a
warm session container whose turn was running in the killed CLI run. (Between turns a warm
container belongs to no process and lives on to its expiry; tests/warm/test_warm_sessions.py.)"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
import uuid
from pathlib import Path
from typing import Any

import pytest

from channelcoder.testing.fake_anthropic import Reply, ToolCall, Turn
from tests.lsp.rawclient import RawClient
from tests.plugins.docker import job_ran_its_tool, run_containers, wait_until
from tests.warm.helpers import ready_standby, warm_containers

pytestmark = [pytest.mark.docker, pytest.mark.usefixtures("claude_bin")]

GONE_WITHIN = 10.0
GUARD = 120.0


def gone_within(client: Any, ids: set[str], limit: float = GONE_WITHIN) -> float:
    started = time.monotonic()
    wait_until(lambda: not ids & run_containers(client), f"the end of {len(ids)} container(s)",
               limit)
    return time.monotonic() - started


def test_a_killed_language_server_takes_its_job_container_and_standby_with_it(
        scripted: Any, git_repo: Path, sandbox_image: str, docker_client: Any) -> None:
    api = scripted([ToolCall("Bash", {"command": "echo started"}),
                    Turn([Reply("late")], first_delay=120)])
    before = run_containers(docker_client)
    raw = RawClient(env=api.env())
    try:
        raw.initialize(git_repo, {"docker": {"image": sandbox_image},
                                  "streamEvents": True})
        wait_until(lambda: ready_standby(docker_client) is not None, "a standby", GUARD)
        standby = ready_standby(docker_client)
        assert standby is not None
        job_id = f"killed-{uuid.uuid4().hex[:6]}"
        raw.send({"jsonrpc": "2.0", "id": "run", "method": "workspace/executeCommand",
                  "params": {"command": "channelcoder.run",
                             "arguments": [{"prompt": "wait", "jobId": job_id,
                                            "options": {"apply": "direct"}}]}})
        wait_until(lambda: job_ran_its_tool(raw.notifications, job_id),
                   "the job's tool call", GUARD)
        owned = run_containers(docker_client) - before
        assert standby["Id"] in owned and len(owned) >= 2, "no job container beside the standby"
        raw.process.send_signal(signal.SIGKILL)
        raw.wait_exit(GUARD)
        elapsed = gone_within(docker_client, owned)
        print(f"{len(owned)} containers gone {elapsed:.2f} s after the SIGKILL")
    finally:
        if raw.process.poll() is None:
            raw.process.kill()
            raw.process.wait()
        raw.close()
        for cid in run_containers(docker_client) - before:
            docker_client.api.remove_container(cid, force=True)


def test_a_warm_turn_whose_cli_run_is_killed_ends_with_its_container(
        scripted: Any, git_repo: Path, sandbox_image: str, docker_client: Any) -> None:
    api = scripted([ToolCall("Bash", {"command": "echo started"}),
                    Turn([Reply("late")], first_delay=120)])
    before = run_containers(docker_client)
    cli = subprocess.Popen(
        [sys.executable, "-m", "channelcoder", "run", "--session", "killed-turn",
         "--docker-image", sandbox_image, "--keep-warm", "300", "-p",
         "wait"], cwd=git_repo, env=dict(os.environ), stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL)
    try:
        wait_until(lambda: len(api.agent_requests()) >= 2 or cli.poll() is not None,
                   "the slow turn's request", GUARD)
        assert cli.poll() is None, f"the run ended early (exit {cli.returncode})"
        (warm,) = warm_containers(docker_client, "io.channelcoder.session=killed-turn")
        cli.send_signal(signal.SIGKILL)
        cli.wait(GUARD)
        elapsed = gone_within(docker_client, {warm["Id"]})
        print(f"warm container gone {elapsed:.2f} s after the SIGKILL")
    finally:
        if cli.poll() is None:
            cli.kill()
            cli.wait()
        for cid in run_containers(docker_client) - before:
            docker_client.api.remove_container(cid, force=True)
        subprocess.run([sys.executable, "-m", "channelcoder", "sessions", "rm", "killed-turn"],
                       cwd=git_repo, capture_output=True, timeout=60)
