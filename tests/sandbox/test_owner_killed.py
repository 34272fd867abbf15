"""A sandbox notices by itself, within seconds, that the process owning it is gone: a CLI run
killed with SIGKILL takes its container with it, with no other channelcoder process started
(real CLI process, engine and claude; scripted model with a slow turn so the job is mid-run)."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest

from channelcoder.testing.fake_anthropic import Reply, ToolCall, Turn
from tests.plugins.docker import RUN_ID, RUN_LABEL, wait_until

pytestmark = pytest.mark.docker

GONE_WITHIN = 10.0
GUARD = 120.0
# Claude's own stdin, seen from inside: the container's stdin is the owner's lifeline, not claude's.
CLAUDE_STDIN = ('for d in /proc/[0-9]*; do case "$(tr "\\0" " " <"$d/cmdline" 2>/dev/null)" in '
                'claude\\ *) echo "claude-stdin=$(readlink "$d/fd/0")";; esac; done')


def containers(client: Any, workspace: Path) -> list[str]:
    return [c["Id"] for c in client.api.containers(all=True, filters={"label": [
        f"{RUN_LABEL}={RUN_ID}", f"io.channelcoder.workspace={workspace}"]})]


def seconds_until_gone(client: Any, workspace: Path, limit: float = GONE_WITHIN) -> float:
    started = time.monotonic()
    wait_until(lambda: not containers(client, workspace), "the container's end", limit)
    return time.monotonic() - started


@pytest.fixture
def workspace(tmp_path: Path) -> Path:
    root = tmp_path / "ws"
    root.mkdir()
    (root / "notes.txt").write_text("hello\n")
    return root


def start_cli(*args: str, cwd: Path) -> subprocess.Popen[bytes]:
    return subprocess.Popen([sys.executable, "-m", "channelcoder", "run", *args], cwd=cwd,
                            env=dict(os.environ), stdout=subprocess.DEVNULL,
                            stderr=subprocess.DEVNULL)


def kill_mid_job(cli: subprocess.Popen[bytes], api: Any, client: Any, workspace: Path) -> float:
    """Wait until the job's tool ran and its slow turn is asked for; SIGKILL; time to the end."""
    try:
        wait_until(lambda: len(api.agent_requests()) >= 2 or cli.poll() is not None,
                   "the slow turn's request", GUARD)
        assert cli.poll() is None, f"the run ended early (exit {cli.returncode})"
        assert containers(client, workspace), "the job has no container"
        cli.send_signal(signal.SIGKILL)
        cli.wait(GUARD)
        return seconds_until_gone(client, workspace)
    finally:
        if cli.poll() is None:
            cli.kill()
            cli.wait()
        for cid in containers(client, workspace):
            client.api.remove_container(cid, force=True)


def test_a_killed_cli_run_takes_its_container_with_it(
        scripted: Any, sandbox_image: str, workspace: Path, docker_client: Any) -> None:
    api = scripted([ToolCall("Bash", {"command": CLAUDE_STDIN}),
                    Turn([Reply("late")], first_delay=120)])
    cli = start_cli("--docker-image", sandbox_image, "-p", "wait",
                    cwd=workspace)
    elapsed = kill_mid_job(cli, api, docker_client, workspace)
    seen = "\n".join(api.agent_requests()[-1].texts())
    assert "claude-stdin=/dev/null" in seen, seen
    print(f"container gone {elapsed:.2f} s after the SIGKILL")
