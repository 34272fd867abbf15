"""An engine reached over SSH (`DOCKER_HOST=ssh://…`), the docker CLI's way: a real OpenSSH
server on 127.0.0.1 with key authentication, whose login runs `docker system dial-stdio`
against the local engine. Jobs, cancel and image builds go through it end to end."""

from __future__ import annotations

import os
import re
import shutil
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import anyio
import pytest

from channelcoder.claude.events import Error, Result, TextDelta
from channelcoder.config import DockerOptions
from channelcoder.errors import DockerUnavailable
from channelcoder.sandbox.image.resolve import ResolvedImage
from channelcoder.sandbox.manager import SandboxManager
from channelcoder.testing.fake_anthropic import Reply, ToolCall, Turn
from channelcoder.trust import set_trusted
from tests.plugins.docker import RUN_ID, RUN_LABEL, docker_options

from .helpers import HANG_GUARD, collect, containers_of, ensure_debian_packages, final, job, tool_outputs

pytestmark = [pytest.mark.docker, pytest.mark.timeout(600)]


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


@pytest.fixture(scope="module")
def sshd(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[str, Path]]:
    """An sshd of the test's own on 127.0.0.1 (its own host key, key auth for a throw-away key
    only), and a directory holding an `ssh` that uses that key and trusts that host key: put
    first on PATH, it is what `docker -H ssh://…` would find with the user's ~/.ssh/config."""
    ensure_debian_packages({"sshd": "openssh-server", "ssh": "openssh-client"}, "the ssh tests")
    if os.geteuid() != 0:
        pytest.skip("the ssh tests log in as the user running them, which needs root here")
    root = tmp_path_factory.mktemp("sshd")
    subprocess.run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-f", str(root / "host")],
                   check=True)
    subprocess.run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-f", str(root / "client")],
                   check=True)
    (root / "authorized_keys").write_text((root / "client.pub").read_text())
    port = _free_port()
    (root / "sshd_config").write_text(
        f"Port {port}\nListenAddress 127.0.0.1\nHostKey {root / 'host'}\n"
        f"PidFile {root / 'sshd.pid'}\nAuthorizedKeysFile {root / 'authorized_keys'}\n"
        "PasswordAuthentication no\nKbdInteractiveAuthentication no\nUsePAM no\n"
        "PermitRootLogin prohibit-password\nStrictModes no\n"
        f"SetEnv PATH={os.environ.get('PATH', '/usr/bin:/bin')}\n")
    host_key = (root / "host.pub").read_text().split()
    (root / "known_hosts").write_text(f"[127.0.0.1]:{port} {host_key[0]} {host_key[1]}\n")
    (root / "ssh_config").write_text(
        f"Host 127.0.0.1\n  IdentityFile {root / 'client'}\n  IdentitiesOnly yes\n"
        f"  UserKnownHostsFile {root / 'known_hosts'}\n  StrictHostKeyChecking yes\n"
        "  LogLevel ERROR\n")
    bin_dir = root / "bin"
    bin_dir.mkdir()
    real_ssh = shutil.which("ssh")
    (bin_dir / "ssh").write_text(f'#!/bin/sh\nexec {real_ssh} -F {root / "ssh_config"} "$@"\n')
    (bin_dir / "ssh").chmod(0o755)
    Path("/run/sshd").mkdir(exist_ok=True)  # sshd's privilege separation directory
    server = subprocess.Popen(["/usr/sbin/sshd", "-D", "-e", "-f", str(root / "sshd_config")],
                              stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    try:
        deadline = time.monotonic() + 10
        while True:
            with socket.socket() as probe:
                if probe.connect_ex(("127.0.0.1", port)) == 0:
                    break
            assert server.poll() is None, server.stderr.read() if server.stderr else ""
            assert time.monotonic() < deadline, "sshd did not start"
            time.sleep(0.05)
        yield f"ssh://{os.environ.get('USER') or 'root'}@127.0.0.1:{port}", bin_dir
    finally:
        server.terminate()
        server.wait(10)


@pytest.fixture
def over_ssh(sshd: tuple[str, Path], monkeypatch: pytest.MonkeyPatch) -> SandboxManager:
    """A manager of its own whose engine is DOCKER_HOST=ssh://… (a process's manager keeps
    the engine it first connected to)."""
    url, bin_dir = sshd
    monkeypatch.setenv("DOCKER_HOST", url)
    monkeypatch.setenv("PATH", f"{bin_dir}{os.pathsep}{os.environ['PATH']}")
    return SandboxManager()


@pytest.fixture
def workspace(tmp_path: Path) -> Path:
    ws = tmp_path / "ws"
    ws.mkdir()
    (ws / "notes.txt").write_text("over ssh\n")
    return ws


async def test_a_job_runs_end_to_end_on_an_engine_over_ssh(
        scripted: Any, sandbox_image: str, workspace: Path, over_ssh: SandboxManager) -> None:
    scripted([ToolCall("Bash", {"command": "cat notes.txt && echo edited > out.txt"}),
              Reply("Done over ssh.")])
    events = await collect(job("go", workspace, docker_options(sandbox_image), manager=over_ssh))
    result = final(events)
    assert isinstance(result, Result) and result.ok, result
    assert tool_outputs(events)[0].output.strip() == "over ssh"
    assert (workspace / "out.txt").read_text() == "edited\n"
    engine = await over_ssh.engine()
    assert engine.transport == "ssh" and engine.api.base_url.startswith("ssh://")
    await over_ssh.close()


async def test_cancel_over_ssh_removes_the_container(
        scripted: Any, sandbox_image: str, workspace: Path, over_ssh: SandboxManager,
        docker_client: Any) -> None:
    scripted([Turn([Reply("word " * 80)], chunks=80, delay=0.2)])
    running = job("cancel me", workspace, docker_options(sandbox_image), manager=over_ssh)
    events = []
    cancelled_at = 0.0
    with anyio.fail_after(HANG_GUARD):
        async for event in running.events():
            events.append(event)
            if isinstance(event, TextDelta) and not cancelled_at:
                running.cancel()
                cancelled_at = time.monotonic()
    error = final(events)
    assert isinstance(error, Error) and error.code == "cancelled"
    assert containers_of(docker_client, running.id) == []
    assert time.monotonic() - cancelled_at < 10
    await over_ssh.close()


async def test_an_image_is_built_over_ssh(
        sandbox_image: str, workspace: Path, over_ssh: SandboxManager,
        docker_client: Any) -> None:
    (workspace / ".channelcoder").mkdir()
    (workspace / ".channelcoder" / "Dockerfile").write_text(
        f"FROM {sandbox_image}\n# channelcoder: sandbox\n"
        f"RUN echo built-over-ssh-{RUN_ID} > /tmp/marker\n")
    set_trusted(workspace)
    resolved = None
    async for item in over_ssh.resolve_image(DockerOptions(), workspace):
        if isinstance(item, ResolvedImage):
            resolved = item
    assert resolved is not None and resolved.built
    image = docker_client.images.get(resolved.ref)
    assert image.labels.get(RUN_LABEL) == RUN_ID
    await over_ssh.close()


def test_a_refused_ssh_login_says_what_ssh_said(
        sshd: tuple[str, Path], monkeypatch: pytest.MonkeyPatch) -> None:
    url, bin_dir = sshd
    monkeypatch.setenv("DOCKER_HOST", url.replace("://", "://nobody-here@"))
    monkeypatch.setenv("PATH", f"{bin_dir}{os.pathsep}{os.environ['PATH']}")
    started = time.monotonic()
    with pytest.raises(DockerUnavailable) as caught:
        SandboxManager().engine_blocking()
    assert time.monotonic() - started < 20
    assert "ssh to 127.0.0.1 failed" in caught.value.message
    assert "Permission denied" in caught.value.message
    assert caught.value.hint and "known_hosts" in caught.value.hint


def test_doctor_says_the_engine_is_reached_over_ssh_and_the_api_version(
        sshd: tuple[str, Path], workspace: Path) -> None:
    url, bin_dir = sshd
    env = {**os.environ, "DOCKER_HOST": url,
           "PATH": f"{bin_dir}{os.pathsep}{os.environ['PATH']}"}
    done = subprocess.run([sys.executable, "-m", "channelcoder", "doctor"], cwd=workspace,
                          env=env, capture_output=True, text=True, timeout=120)
    engine_line = next(line for line in done.stdout.splitlines() if "engine" in line)
    assert engine_line.startswith("ok") and f"at {url} over ssh" in engine_line
    assert re.search(r"API \d+\.\d+, negotiated \(engine \d+\.\d+, client up to", engine_line)
