"""Small helpers for sandbox tests: run a job in Docker, find its container."""

from __future__ import annotations

import contextlib
import os
import shutil
import subprocess
from pathlib import Path
from typing import Any, NoReturn

import anyio
import pytest

from channelcoder.claude.events import AnyEvent, Error, Result, ToolResult
from channelcoder.config import build_options
from channelcoder.jobs import Job
from channelcoder.request import Request
from channelcoder.sandbox.manager import SandboxManager

HANG_GUARD = 120.0


def request(prompt: str, workspace: Path, docker: dict[str, Any], **options: Any) -> Request:
    return Request(prompt, build_options({"docker": docker, **options}), workspace)


def job(prompt: str, workspace: Path, docker: dict[str, Any],
        manager: SandboxManager | None = None, **options: Any) -> Job:
    backend = manager or SandboxManager.shared()
    return Job(request(prompt, workspace, docker, **options), backend=backend)


async def collect(running: Job, guard: float = HANG_GUARD) -> list[AnyEvent]:
    with anyio.fail_after(guard):
        return [event async for event in running.events()]


def final(events: list[AnyEvent]) -> Result | Error:
    last = events[-1]
    assert isinstance(last, Result | Error), last
    assert sum(isinstance(e, Result | Error) for e in events) == 1
    return last


def tool_outputs(events: list[AnyEvent]) -> list[ToolResult]:
    return [e for e in events if isinstance(e, ToolResult)]


def containers_of(client: Any, job_id: str) -> list[Any]:
    """The job's containers that still exist (one that is being removed is skipped)."""
    from docker.errors import NotFound

    found = []
    for item in client.api.containers(all=True,
                                      filters={"label": f"io.channelcoder.job={job_id}"}):
        with contextlib.suppress(NotFound):
            found.append(client.containers.get(item["Id"]))
    return found


def unavailable(message: str) -> NoReturn:
    """Skip locally; in CI (CI set) a missing prerequisite is a failure."""
    if os.environ.get("CI"):
        pytest.fail(message)
    pytest.skip(message)


def ensure_debian_packages(packages: dict[str, str], who: str) -> None:
    """Install the Debian packages whose binaries are missing ({binary: package}), as
    scripts/engine.sh does: only as root with apt-get; otherwise `unavailable`."""
    missing = sorted({package for binary, package in packages.items()
                      if not shutil.which(binary) and not Path("/usr/sbin", binary).exists()})
    if not missing:
        return
    if os.geteuid() != 0 or not shutil.which("apt-get"):
        unavailable(f"{who} need {' '.join(missing)}: apt-get install {' '.join(missing)}")
    env = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}
    install = ["apt-get", "install", "-y", "-q", "--no-install-recommends", *missing]
    if subprocess.run(install, env=env, capture_output=True, timeout=300).returncode != 0:
        subprocess.run(["apt-get", "update", "-q"], env=env, capture_output=True, timeout=300)
        done = subprocess.run(install, env=env, capture_output=True, text=True, timeout=300)
        if done.returncode != 0:
            unavailable(f"apt-get install {' '.join(missing)} failed: {done.stderr[-500:]}")
