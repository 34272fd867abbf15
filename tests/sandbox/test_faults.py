"""Faults: every one ends the job with one clear Error, never a hang, never an orphan.

Engine-down tests point DOCKER_HOST at a socket the test controls; the shared engine is never
stopped.
"""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import anyio
import pytest

from channelcoder.claude.events import Error, Status, TextDelta
from channelcoder.sandbox.manager import SandboxManager
from channelcoder.testing.fake_anthropic import Failure, Reply, ToolCall, Turn
from channelcoder.trust import set_trusted
from tests.plugins.docker import RUN_ID, RUN_LABEL, docker_options

from .helpers import HANG_GUARD, collect, containers_of, final, job

pytestmark = pytest.mark.docker
ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture
def workspace(tmp_path: Path) -> Path:
    ws = tmp_path / "ws"
    ws.mkdir()
    return ws


@pytest.fixture
def hangup_socket(tmp_path: Path) -> Iterator[str]:
    """A unix socket that accepts connections and closes them at once: a broken engine."""
    path = tmp_path / "engine.sock"
    server = socket.socket(socket.AF_UNIX)
    server.bind(str(path))
    server.listen(16)
    server.settimeout(0.2)
    stop = threading.Event()

    def serve() -> None:
        while not stop.is_set():
            try:
                conn, _ = server.accept()
            except OSError:
                continue
            conn.close()

    thread = threading.Thread(target=serve, daemon=True)
    thread.start()
    yield f"unix://{path}"
    stop.set()
    thread.join(2)
    server.close()


@pytest.mark.parametrize("kind", ["missing", "hangup"])
async def test_an_unreachable_engine_is_a_clear_error_naming_docker_host(
        kind: str, tmp_path: Path, workspace: Path, hangup_socket: str,
        monkeypatch: pytest.MonkeyPatch) -> None:
    host = f"unix://{tmp_path}/no-engine.sock" if kind == "missing" else hangup_socket
    monkeypatch.setenv("DOCKER_HOST", host)
    events = await collect(job("hi", workspace, {}, SandboxManager()), guard=30)
    error = final(events)
    assert isinstance(error, Error) and error.code == "docker-unavailable"
    assert f"DOCKER_HOST={host}" in error.message
    assert "start Docker" in error.hint and "DOCKER_HOST" in error.hint


def test_the_cli_says_the_same_without_a_traceback(tmp_path: Path, workspace: Path) -> None:
    env = {**os.environ, "DOCKER_HOST": f"unix://{tmp_path}/no-engine.sock"}
    done = subprocess.run([sys.executable, "-m", "channelcoder", "run", "--docker", "-p", "hi"],
                          cwd=workspace, env=env, capture_output=True, text=True, timeout=60)
    assert done.returncode == 1
    assert "cannot reach the Docker engine at DOCKER_HOST=unix://" in done.stderr
    assert "hint: start Docker" in done.stderr and "Traceback" not in done.stderr


async def test_a_missing_image_is_a_clear_error(docker_client: Any, workspace: Path) -> None:
    events = await collect(job("hi", workspace, {"image": "channelcoder-test/missing:none",
                                                 "pull": "never"}))
    error = final(events)
    assert isinstance(error, Error) and error.code == "image"
    assert "channelcoder-test/missing:none does not exist" in error.message
    assert "docker pull" in error.hint


async def test_an_image_without_claude_names_the_fix(docker_client: Any, workspace: Path) -> None:
    events = await collect(job("hi", workspace, {"image": "debian:bookworm-slim"}))
    error = final(events)
    assert isinstance(error, Error) and error.code == "image"
    assert "has no working 'claude' command" in error.message
    assert "npm install -g @anthropic-ai/claude-code@" in error.hint


async def test_a_failed_build_quotes_the_failing_step(sandbox_image: str,
                                                      workspace: Path) -> None:
    (workspace / "Dockerfile").write_text(
        f"FROM {sandbox_image}\n# channelcoder: sandbox\n"
        "RUN echo preparing-things && echo broken-config >&2 && exit 3\n")
    set_trusted(workspace)
    events = await collect(job("hi", workspace, {}))
    error = final(events)
    assert isinstance(error, Error) and error.code == "build-failed"
    assert "failed at Step 2/" in error.message and "exit 3" in error.message
    assert "returned a non-zero code: 3" in error.message
    assert "| preparing-things" in error.message and "| broken-config" in error.message
    assert "Removing intermediate" not in error.message and "\x1b" not in error.message
    assert "./Dockerfile" in error.hint


async def test_a_container_killed_from_outside_ends_the_job_with_an_error(
        scripted: Any, sandbox_image: str, workspace: Path, docker_client: Any) -> None:
    scripted([Turn([Reply("word " * 80)], chunks=80, delay=0.2)])
    running = job("kill me", workspace, docker_options(sandbox_image))
    events = []
    with anyio.fail_after(HANG_GUARD):
        async for event in running.events():
            events.append(event)
            if isinstance(event, TextDelta) and len([e for e in events
                                                     if isinstance(e, TextDelta)]) == 1:
                (container,) = containers_of(docker_client, running.id)
                container.kill()
    error = final(events)
    assert isinstance(error, Error) and error.code == "sandbox"
    assert "stopped from outside" in error.message and "137" in error.message


async def test_a_bad_key_ends_a_docker_job_at_once_and_its_container(
        scripted: Any, sandbox_image: str, workspace: Path, docker_client: Any) -> None:
    """The CLI's default retries (ten, over about three minutes) are not waited out."""
    scripted([Turn([Reply("never")], failure=Failure(401, 0, "invalid x-api-key",
                                                     retry_header=False))])
    running = job("hi", workspace, docker_options(sandbox_image))
    events = []
    with anyio.fail_after(HANG_GUARD):
        async for event in running.events():
            events.append(event)
            if isinstance(event, Status) and event.phase == "running":
                claude_started = time.monotonic()
    assert time.monotonic() - claude_started < 5
    error = final(events)
    assert isinstance(error, Error) and error.code == "auth" and "401" in error.message
    assert error.hint and "ANTHROPIC_API_KEY" in error.hint
    assert containers_of(docker_client, running.id) == []


async def test_cancel_mid_run_removes_the_container(scripted: Any, sandbox_image: str,
                                                    workspace: Path, docker_client: Any) -> None:
    scripted([Turn([Reply("word " * 80)], chunks=80, delay=0.2)])
    running = job("cancel me", workspace, docker_options(sandbox_image))
    events = []
    with anyio.fail_after(HANG_GUARD):
        async for event in running.events():
            events.append(event)
            if isinstance(event, TextDelta) and not running._cancel_requested:
                assert containers_of(docker_client, running.id)
                running.cancel()
                cancelled_at = time.monotonic()
    gone_after = time.monotonic() - cancelled_at
    error = final(events)
    assert isinstance(error, Error) and error.code == "cancelled"
    assert containers_of(docker_client, running.id) == []
    assert gone_after < 10, f"the container took {gone_after:.1f} s to go"


def test_a_manager_started_after_a_crash_removes_the_old_containers(
        scripted: Any, sandbox_image: str, workspace: Path, docker_client: Any) -> None:
    scripted([ToolCall("Bash", {"command": "sleep 600"}), Reply("never")])
    label = {"label": [f"{RUN_LABEL}={RUN_ID}", "io.channelcoder.workspace=" + str(workspace)]}
    cli = subprocess.Popen(
        [sys.executable, "-m", "channelcoder", "run", "--docker-image", sandbox_image,
         "-p", "sleep for a long time"],
        cwd=workspace, env=dict(os.environ), stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    try:
        deadline = time.monotonic() + HANG_GUARD
        while not docker_client.containers.list(filters=label):
            assert cli.poll() is None, cli.stderr.read() if cli.stderr else ""
            assert time.monotonic() < deadline, "the CLI never started its sandbox"
            time.sleep(0.1)
        time.sleep(1.0)
        cli.send_signal(signal.SIGKILL)
        cli.wait(10)
    finally:
        if cli.poll() is None:
            cli.kill()
        if cli.stderr:
            cli.stderr.close()
    (orphan,) = docker_client.api.containers(all=True, filters=label)
    assert orphan["State"] == "running"

    anyio.run(SandboxManager().engine)
    assert docker_client.api.containers(all=True, filters=label) == []


async def test_bad_docker_options_fail_before_any_engine_work(
        tmp_path: Path, workspace: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("DOCKER_HOST", f"unix://{tmp_path}/no-engine.sock")
    for docker, words in (({"mounts": ["missing-dir:/data"]}, "does not exist"),
                          ({"env": {"CLAUDE_CONFIG_DIR": "x"}}, "managed by channelcoder"),
                          ({"user": "a b"}, "not UID")):
        events = await collect(job("hi", workspace, docker, SandboxManager()), guard=30)
        error = final(events)
        assert isinstance(error, Error) and error.code == "config", error
        assert words in error.message
