"""A CLI run's head start: the container launched before the event loop, then handed to the job.

What a user would notice if it went wrong: a second container, a container left behind when
nobody took it, a job run with a launch it did not ask for, a Ctrl-C that leaves a sandbox.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import anyio
import pytest

from channelcoder.claude.events import Result
from channelcoder.jobs import Job
from channelcoder.sandbox.warm.head_start import HeadStart
from channelcoder.testing.fake_anthropic import Reply, ToolCall
from tests.conftest import git
from tests.plugins.docker import RUN_ID, RUN_LABEL, docker_options

from .helpers import HANG_GUARD, collect, final, request


@pytest.fixture
def workspace(tmp_path: Path) -> Path:
    root = tmp_path / "ws"
    root.mkdir()
    (root / "notes.txt").write_text("hello\n")
    return root


def _containers(client: Any, workspace: Path) -> list[dict[str, Any]]:
    return list(client.api.containers(all=True, filters={"label": [
        f"{RUN_LABEL}={RUN_ID}", f"io.channelcoder.workspace={workspace}"]}))


def _gone(client: Any, workspace: Path, within: float = 10.0) -> bool:
    deadline = time.monotonic() + within
    while _containers(client, workspace):
        if time.monotonic() > deadline:
            return False
        time.sleep(0.05)
    return True


def test_a_head_start_nobody_takes_is_removed(scripted: Any, sandbox_image: str,
                                              workspace: Path, docker_client: Any) -> None:
    scripted([Reply("unused")])
    head = HeadStart.begin(request("hi", workspace, docker_options(sandbox_image)))
    assert head is not None, "a plain --docker-image run should get a head start"
    (launched,) = _containers(docker_client, workspace)
    assert launched["Id"] == head.container_id
    head.release()
    head.release()
    assert _gone(docker_client, workspace)


async def test_the_job_runs_in_the_head_start_container(
        scripted: Any, sandbox_image: str, workspace: Path, docker_client: Any) -> None:
    scripted([Reply("from the head start")])
    head = HeadStart.begin(request("hi", workspace, docker_options(sandbox_image)))
    assert head is not None
    running = Job(head.request, backend=head)
    events = await collect(running)
    head.release()
    result = final(events)
    assert isinstance(result, Result) and result.text == "from the head start"
    made = {e["Actor"]["ID"] for e in docker_client.api.events(
        since=int(running.created) - 1, until=int(time.time()) + 1, decode=True,
        filters={"event": "create", "label": f"io.channelcoder.job={running.id}"})}
    assert made == {head.container_id}
    assert await anyio.to_thread.run_sync(_gone, docker_client, workspace)


async def test_in_a_repository_the_head_start_has_the_git_mirror_and_the_job_takes_it(
        scripted: Any, sandbox_image: str, git_repo: Path, docker_client: Any) -> None:
    scripted([ToolCall("Bash", {"command": "git log --format=%s -1 && touch by-claude.txt && "
                                           "git add by-claude.txt && git commit -qm 'in the head "
                                           "start'"}),
              Reply("committed")])
    head = HeadStart.begin(request("commit", git_repo, docker_options(sandbox_image)))
    assert head is not None
    mounts = {m["Destination"] for m in
              docker_client.api.inspect_container(head.container_id)["Mounts"]}
    assert "/workspace/.git" in mounts
    running = Job(head.request, backend=head)
    events = await collect(running)
    head.release()
    result = final(events)
    assert isinstance(result, Result) and result.ok, result
    made = {e["Actor"]["ID"] for e in docker_client.api.events(
        since=int(running.created) - 1, until=int(time.time()) + 1, decode=True,
        filters={"event": "create", "label": f"io.channelcoder.job={running.id}"})}
    assert made == {head.container_id}
    assert git(git_repo, "log", "-1", "--format=%s") == "in the head start\n"
    assert await anyio.to_thread.run_sync(_gone, docker_client, git_repo)


async def test_a_job_asking_for_another_launch_gets_its_own_container(
        scripted: Any, sandbox_image: str, workspace: Path, docker_client: Any) -> None:
    scripted([Reply("the job's own")])
    head = HeadStart.begin(request("planned", workspace, docker_options(sandbox_image)))
    assert head is not None
    planned = head.container_id
    other = request("something else", workspace, docker_options(sandbox_image))
    events = await collect(Job(other, backend=head))
    head.release()
    result = final(events)
    assert isinstance(result, Result) and result.text == "the job's own"
    assert planned not in {c["Id"] for c in docker_client.api.containers(all=True)}
    assert await anyio.to_thread.run_sync(_gone, docker_client, workspace)


def test_ctrl_c_on_a_docker_run_stops_and_removes_its_sandbox(
        scripted: Any, sandbox_image: str, workspace: Path, docker_client: Any) -> None:
    scripted([ToolCall("Bash", {"command": "sleep 600"}), Reply("never")])
    cli = subprocess.Popen(
        [sys.executable, "-m", "channelcoder", "run", "--docker-image", sandbox_image,
         "-p", "sleep for a long time"],
        cwd=workspace, env=dict(os.environ), stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
        text=True)
    try:
        deadline = time.monotonic() + HANG_GUARD
        while not any(c["State"] == "running" for c in _containers(docker_client, workspace)):
            assert cli.poll() is None, cli.stderr.read() if cli.stderr else ""
            assert time.monotonic() < deadline, "the CLI never started its sandbox"
            time.sleep(0.05)
        time.sleep(1.0)  # claude is in its Bash call
        cli.send_signal(signal.SIGINT)
        _, stderr = cli.communicate(timeout=30)
    finally:
        if cli.poll() is None:
            cli.kill()
    assert cli.returncode == 130 and "cancelled" in stderr, stderr
    assert _gone(docker_client, workspace, within=5.0)
