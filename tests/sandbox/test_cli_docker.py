"""`channelcoder run --docker`, `image` and `doctor` as a user runs them (real processes)."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from channelcoder.testing.fake_anthropic import Reply, ToolCall
from tests.plugins.docker import RUN_ID, RUN_LABEL

pytestmark = pytest.mark.docker
PLANTED_KEY = "sk-ant-api03-PLANTEDkeyDoNotPrint0123456789"
PLANTED_ENV = "planted-env-value-DoNotPrint"


def channelcoder(*args: str, cwd: Path, env: dict[str, str] | None = None,
                 timeout: float = 180) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "channelcoder", *args], cwd=cwd,
                          env={**os.environ, **(env or {})}, capture_output=True, text=True,
                          timeout=timeout)


@pytest.fixture
def workspace(tmp_path: Path) -> Path:
    ws = tmp_path / "ws"
    ws.mkdir()
    (ws / "notes.txt").write_text("a note\n")
    return ws


def test_run_docker_verbose_prints_the_docker_line_without_secrets(
        scripted: Any, sandbox_image: str, workspace: Path) -> None:
    scripted([ToolCall("Bash", {"command": "cat notes.txt; echo \"$PLANTED\" | wc -c"}),
              Reply("The note says: a note.")])
    done = channelcoder("run", "--docker", "--verbose",
                        "--docker-env", f"PLANTED={PLANTED_ENV}", "-p", "read the note",
                        cwd=workspace, env={"ANTHROPIC_API_KEY": PLANTED_KEY})
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "The note says: a note."
    assert "docker run --rm --init" in done.stderr and sandbox_image in done.stderr
    assert f"-v {workspace}:/workspace:rw" in done.stderr
    assert "-e ANTHROPIC_API_KEY=***" in done.stderr and "-e PLANTED=***" in done.stderr
    for secret in (PLANTED_KEY, PLANTED_ENV, PLANTED_KEY[-12:]):
        assert secret not in done.stdout + done.stderr


def test_an_app_dockerfile_is_skipped_with_one_notice(scripted: Any, sandbox_image: str,
                                                      workspace: Path) -> None:
    (workspace / "Dockerfile").write_text("FROM python:3.12-slim\nRUN pip install flask\n")
    channelcoder("trust", str(workspace), cwd=workspace)
    scripted([Reply("ok")])
    done = channelcoder("run", "--docker", "-p", "hi", cwd=workspace)
    assert done.returncode == 0, done.stderr
    notices = [line for line in done.stderr.splitlines() if "does not install the Claude CLI" in line]
    assert len(notices) == 1 and "bundled sandbox image" in notices[0]


def test_image_build_ls_and_prune(sandbox_image: str, workspace: Path, docker_client: Any) -> None:
    built = channelcoder("image", "build", cwd=workspace)
    assert built.returncode == 0, built.stderr
    assert built.stdout.startswith(f"{sandbox_image}  up to date")
    listed = channelcoder("image", "ls", cwd=workspace)
    assert f"{sandbox_image} *" in listed.stdout
    app = workspace / "app"
    app.mkdir()
    (app / "Dockerfile").write_text(f"FROM {sandbox_image}\n# channelcoder: sandbox\n"
                                    "ENV CC_PRUNE_ME=1\n")
    channelcoder("trust", str(app), cwd=app)
    made = channelcoder("image", "build", "-q", cwd=app)
    assert made.returncode == 0 and "  built  (./Dockerfile" in made.stdout, made.stderr
    tag = made.stdout.split()[0]
    label = f"{RUN_LABEL}={RUN_ID}"
    dry = channelcoder("image", "prune", "-n", "--label", label, cwd=workspace)
    assert f"would remove {tag}" in dry.stdout and sandbox_image not in dry.stdout
    pruned = channelcoder("image", "prune", "--label", label, cwd=workspace)
    assert f"removed {tag}" in pruned.stdout, pruned.stdout + pruned.stderr
    assert not docker_client.images.list(name=tag)


def test_doctor_reports_engine_image_claude_and_credentials_by_name(
        sandbox_image: str, workspace: Path) -> None:
    done = channelcoder("doctor", cwd=workspace, env={"ANTHROPIC_API_KEY": PLANTED_KEY})
    lines = done.stdout.splitlines()
    assert done.returncode == 0, done.stdout + done.stderr
    assert any(line.startswith("ok  engine") and "Docker" in line for line in lines)
    assert any(line.startswith("ok  image") and sandbox_image in line for line in lines)
    assert any(line.startswith("ok  claude") and "(pinned: " in line for line in lines)
    assert any(line.startswith("ok  credentials  ANTHROPIC_API_KEY (environment)")
               for line in lines)
    assert PLANTED_KEY not in done.stdout + done.stderr


def test_doctor_without_an_engine_says_how_to_fix_it(tmp_path: Path, workspace: Path) -> None:
    done = channelcoder("doctor", cwd=workspace,
                        env={"DOCKER_HOST": f"unix://{tmp_path}/none.sock"}, timeout=60)
    assert done.returncode == 1
    assert "NO  engine" in done.stdout and "hint: start Docker" in done.stdout


def _imported(stderr: str) -> set[str]:
    """Every module (and each top-level package) an `-X importtime` run imported."""
    names = set()
    for line in stderr.splitlines():
        if line.startswith("import time:") and "|" in line:
            name = line.rsplit("|", 1)[1].strip()
            names.update({name, name.split(".")[0]})
    return names


def test_run_imports_the_engine_client_only_with_docker_and_never_pygls_or_docker_py(
        scripted: Any, sandbox_image: str, workspace: Path, claude_bin: Path) -> None:
    scripted([Reply("native")])
    native = subprocess.run([sys.executable, "-X", "importtime", "-m", "channelcoder", "run",
                             "--tools", "Read", "-p", "hi"], cwd=workspace, env=dict(os.environ),
                            capture_output=True, text=True, timeout=120)
    assert native.returncode == 0, native.stderr[-2000:]
    assert not _imported(native.stderr) & {"docker", "pygls", "lsprotocol", "requests",
                                           "channelcoder.sandbox.engine.api"}
    scripted([Reply("sandboxed")])
    sandboxed = subprocess.run([sys.executable, "-X", "importtime", "-m", "channelcoder", "run",
                                "--docker-image", sandbox_image, "-p", "hi"],
                               cwd=workspace, env=dict(os.environ), capture_output=True,
                               text=True, timeout=120)
    assert sandboxed.returncode == 0, sandboxed.stderr[-2000:]
    modules = _imported(sandboxed.stderr)
    assert "channelcoder.sandbox.engine.api" in modules
    assert not modules & {"docker", "requests", "pygls", "lsprotocol"}
