"""A non-root user in the `docker` group: files the sandbox writes are theirs, no chmod.

The suite normally runs as root; this test creates a real user (removed afterwards) and runs
the real CLI as that user with `setpriv`, against the real engine and sandbox image.
"""

from __future__ import annotations

import os
import pwd
import shutil
import stat
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from channelcoder.testing.fake_anthropic import Reply, ToolCall
from tests.plugins.docker import RUN_ID

pytestmark = [pytest.mark.docker,
              pytest.mark.skipif(os.geteuid() != 0, reason="needs root to create a user; as "
                                 "non-root the ownership test in test_sandbox_jobs covers it")]
ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture
def docker_user(docker_client: Any) -> Iterator[pwd.struct_passwd]:
    name = f"ccsbx{RUN_ID[:6]}"
    subprocess.run(["useradd", "--create-home", "--shell", "/bin/bash", "--groups", "docker",
                    name], check=True, capture_output=True)
    try:
        yield pwd.getpwnam(name)
    finally:
        subprocess.run(["userdel", "--remove", name], capture_output=True)


def as_user(user: pwd.struct_passwd) -> list[str]:
    return ["setpriv", f"--reuid={user.pw_uid}", f"--regid={user.pw_gid}", "--init-groups", "--"]


def python_for(user: pwd.struct_passwd) -> tuple[list[str], dict[str, str]]:
    """This venv's Python when the user can run it, else Debian's with the sources on the path."""
    probe = subprocess.run([*as_user(user), sys.executable, "-c", "import channelcoder"],
                           capture_output=True)
    if probe.returncode == 0:
        return [sys.executable], {}
    site = next(Path(sys.prefix).glob("lib/python3*/site-packages"))
    return ["/usr/bin/python3"], {"PYTHONPATH": f"{ROOT / 'server'}:{site}"}


def test_files_written_in_the_sandbox_belong_to_the_non_root_host_user(
        scripted: Any, sandbox_image: str, docker_user: pwd.struct_passwd) -> None:
    base = Path(f"/tmp/cc-nonroot-{RUN_ID}")
    ws = base / "ws"
    ws.mkdir(parents=True)
    try:
        (ws / "app.py").write_text("GREETING = 'hello'\n")
        for path in (base, ws, ws / "app.py"):
            os.chown(path, docker_user.pw_uid, docker_user.pw_gid)
        mode_before = stat.S_IMODE(ws.stat().st_mode)
        scripted([
            ToolCall("Read", {"file_path": "/workspace/app.py"}),
            ToolCall("Edit", {"file_path": "/workspace/app.py", "old_string": "'hello'",
                              "new_string": "'hello from a non-root sandbox'"}),
            ToolCall("Bash", {"command": "id -u && mkdir made && echo x > made/new.txt"}),
            Reply("done"),
        ])
        python, extra = python_for(docker_user)
        env = {key: os.environ[key] for key in ("PATH", "ANTHROPIC_BASE_URL", "ANTHROPIC_API_KEY",
                                                "CLAUDE_CODE_MAX_RETRIES",
                                                "CHANNELCODER_DOCKER_LABELS", "DOCKER_HOST")
               if key in os.environ}
        env.update(extra, HOME=docker_user.pw_dir, USER=docker_user.pw_name,
                   CHANNELCODER_STATE_DIR=str(base / "state"),
                   CHANNELCODER_CACHE_DIR=str(base / "cache"))
        done = subprocess.run([*as_user(docker_user), *python, "-m", "channelcoder", "run",
                               "--docker-image", sandbox_image, "--network", "host", "--json",
                               "-p", "edit the greeting"],
                              cwd=ws, env=env, capture_output=True, text=True, timeout=180)
        assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
        assert f'"output": "{docker_user.pw_uid}' in done.stdout
        assert (ws / "app.py").read_text() == "GREETING = 'hello from a non-root sandbox'\n"
        for path in (ws / "app.py", ws / "made", ws / "made" / "new.txt"):
            info = path.stat()
            assert (info.st_uid, info.st_gid) == (docker_user.pw_uid, docker_user.pw_gid), path
        assert stat.S_IMODE(ws.stat().st_mode) == mode_before
    finally:
        shutil.rmtree(base, ignore_errors=True)
