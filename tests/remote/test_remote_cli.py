"""`channelcoder run --docker` and `doctor` as a user runs them against a remote engine (real
processes, DOCKER_HOST over TLS): the edits land in the local workspace, no local path is in
the docker line, and a killed run takes its remote container with it (the lifeline needs no
shared directory)."""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest

from channelcoder.testing.fake_anthropic import Reply, ToolCall, Turn
from tests.plugins.docker import RUN_ID, RUN_LABEL, wait_until
from tests.plugins.remote_engine import RemoteEngine
from tests.sandbox import test_cli_docker as cli_docker

pytestmark = [pytest.mark.docker, pytest.mark.timeout(600)]
GUARD = 120.0


def channelcoder(*args: str, cwd: Path, env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    return cli_docker.channelcoder(*args, cwd=cwd, env=env, timeout=GUARD)


@pytest.fixture
def workspace(tmp_path: Path) -> Path:
    root = tmp_path / "ws"
    root.mkdir()
    (root / "notes.txt").write_text("written here\n")
    return root


def test_a_cli_run_on_a_remote_engine_edits_the_local_workspace(
        scripted: Any, sandbox_image: str, workspace: Path, remote_engine: RemoteEngine) -> None:
    scripted([ToolCall("Bash", {"command": "cat notes.txt && echo 'from over there' > out.txt"}),
              Reply("Wrote out.txt.")])
    done = channelcoder("run", "--docker-image", sandbox_image, "--verbose", "-p", "write",
                        cwd=workspace, env=remote_engine.tls_env())
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "Wrote out.txt."
    assert (workspace / "out.txt").read_text() == "from over there\n"
    assert f"on the engine at {remote_engine.tls_host}, after copying there" in done.stderr
    docker_line = next(line for line in done.stderr.splitlines() if "docker run" in line)
    assert ":/workspace:rw" in docker_line and f"-v {workspace}" not in docker_line
    assert str(workspace) not in docker_line.split(" --label ")[0]


def test_doctor_names_the_remote_engine(workspace: Path, remote_engine: RemoteEngine) -> None:
    done = channelcoder("doctor", cwd=workspace, env=remote_engine.tls_env())
    assert f"remote engine at {remote_engine.tls_host}, workspace copied in" in done.stdout, \
        done.stdout + done.stderr


def volumes_of(client: Any, pid: int) -> list[str]:
    """The remote volumes whose owner label names process `pid` of this machine."""
    prefix = f"{socket.gethostname()}|{pid}|"
    return [v["Name"] for v in client.api.volumes(
        filters={"label": "io.channelcoder.owner"}).get("Volumes") or []
        if v["Labels"].get("io.channelcoder.owner", "").startswith(prefix)]


def test_a_killed_cli_run_takes_its_remote_container_with_it(
        scripted: Any, sandbox_image: str, workspace: Path, remote_engine: RemoteEngine) -> None:
    api = scripted([ToolCall("Bash", {"command": "echo started"}),
                    Turn([Reply("late")], first_delay=120)])
    client = remote_engine.client()
    label = {"label": [f"{RUN_LABEL}={RUN_ID}", f"io.channelcoder.workspace={workspace}"]}
    cli = subprocess.Popen([sys.executable, "-m", "channelcoder", "run", "--docker-image",
                            sandbox_image, "-p", "wait"], cwd=workspace,
                           env={**os.environ, **remote_engine.tls_env()},
                           stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        wait_until(lambda: len(api.agent_requests()) >= 2 or cli.poll() is not None,
                   "the slow turn's request", GUARD)
        assert cli.poll() is None, f"the run ended early (exit {cli.returncode})"
        assert client.api.containers(all=True, filters=label), "no container on the engine"
        cli.send_signal(signal.SIGKILL)
        cli.wait(GUARD)
        killed = time.monotonic()
        wait_until(lambda: not client.api.containers(all=True, filters=label),
                   "the remote container's end", 10)
        print(f"remote container gone {time.monotonic() - killed:.2f} s after the SIGKILL")
        # Its volumes outlive it, until the next run on that engine removes them.
        assert volumes_of(client, cli.pid), "the killed run left no volume to reap"
        scripted([Reply("again")])  # a model of its own: the first one is mid-turn
        done = channelcoder("run", "--docker-image", sandbox_image, "-p", "again",
                            cwd=workspace, env=remote_engine.tls_env())
        assert done.returncode == 0, done.stderr
        assert volumes_of(client, cli.pid) == []
    finally:
        if cli.poll() is None:
            cli.kill()
            cli.wait()
        for container in client.api.containers(all=True, filters=label):
            client.api.remove_container(container["Id"], force=True)


def test_volumes_lists_a_workspaces_copies_on_the_engine_and_rm_removes_them(
        scripted: Any, sandbox_image: str, workspace: Path, remote_engine: RemoteEngine) -> None:
    scripted([Reply("Looked.")])
    env = remote_engine.tls_env()
    done = channelcoder("run", "--docker-image", sandbox_image, "-p", "look", cwd=workspace,
                        env=env)
    assert done.returncode == 0, done.stderr
    listed = channelcoder("volumes", "ls", cwd=workspace, env=env)
    assert listed.returncode == 0, listed.stderr
    assert str(workspace) in listed.stdout  # the workspace's pooled copy stays for the next job
    rm = channelcoder("volumes", "rm", "-C", str(workspace), cwd=workspace, env=env)
    assert rm.returncode == 0 and "removed channelcoder-job-" in rm.stdout, rm.stdout + rm.stderr
    after = channelcoder("volumes", "ls", "--json", cwd=workspace, env=env)
    assert [v for v in json.loads(after.stdout) if v["workspace"] == str(workspace)] == []
    again = channelcoder("run", "--docker-image", sandbox_image, "-p", "look", cwd=workspace,
                         env=env)
    assert again.returncode == 0, again.stderr  # the next job copies it in again
    bare = channelcoder("volumes", "rm", cwd=workspace, env=env)
    assert bare.returncode == 2 and "-C DIR, or --all" in bare.stderr, bare.stderr
