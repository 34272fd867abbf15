"""The native backend: the host's claude as a subprocess (no Docker)."""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import subprocess
import sys
import tempfile
from collections.abc import AsyncGenerator
from pathlib import Path

import anyio
from anyio.abc import Process

from .backend import ClaudeProcess, read_tail
from .claude.argv import child_env, format_command
from .claude.events import Status
from .errors import ClaudeNotFound
from .launch import LaunchSpec, PreparedLaunch

TERMINATE_GRACE = 1.5
CLAUDE_ENV = "CHANNELCODER_CLAUDE"


def find_claude(explicit: str | None = None) -> str:
    """The host claude: option > $CHANNELCODER_CLAUDE > beside this Python (a venv) > PATH."""
    candidates = [explicit, os.environ.get(CLAUDE_ENV)]
    for candidate in candidates:
        if candidate:
            path = shutil.which(candidate) or (candidate if Path(candidate).is_file() else None)
            if path:
                return path
            raise ClaudeNotFound(f"the claude binary {candidate!r} does not exist")
    beside = Path(sys.executable).parent / "claude"
    if beside.is_file() and os.access(beside, os.X_OK):
        return str(beside)
    found = shutil.which("claude")
    if found:
        return found
    raise ClaudeNotFound("the Claude Code CLI ('claude') is not installed on this machine")


class NativeProcess:
    def __init__(self, process: Process, stderr_path: Path, command_line: str) -> None:
        self._process = process
        self._stderr_path = stderr_path
        self.command_line = command_line

    def __del__(self) -> None:
        self._stderr_path.unlink(missing_ok=True)

    @property
    def pid(self) -> int:
        return self._process.pid

    async def read(self) -> bytes:
        assert self._process.stdout is not None
        try:
            return await self._process.stdout.receive(65536)
        except (anyio.EndOfStream, anyio.ClosedResourceError, anyio.BrokenResourceError):
            return b""

    async def wait(self) -> int:
        return await self._process.wait()

    def stderr_tail(self) -> str:
        text = read_tail(self._stderr_path).decode("utf-8", "replace").strip()
        return "\n".join(text.splitlines()[-20:])

    def failure(self) -> Exception | None:
        return None

    async def terminate(self) -> None:
        with anyio.CancelScope(shield=True):
            if self._process.returncode is None:
                self._signal(signal.SIGTERM)
                with anyio.move_on_after(TERMINATE_GRACE):
                    await self._process.wait()
                if self._process.returncode is None:
                    self._signal(signal.SIGKILL)
                    await self._process.wait()
            else:
                # The leader is gone; make sure its process group (tool children) is too.
                self._signal(signal.SIGKILL)
            await self._process.aclose()

    def _signal(self, sig: signal.Signals) -> None:
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(self._process.pid, sig)


class NativeBackend:
    """Runs claude on the host. Its working directory is the job's cwd."""

    snapshot_id: str | None = None

    async def prepare(self, spec: LaunchSpec) -> AsyncGenerator[Status | PreparedLaunch, None]:
        find_claude(spec.options.claude_path)
        yield PreparedLaunch(spec)

    async def start(self, prepared: PreparedLaunch) -> ClaudeProcess:
        spec = prepared.spec
        binary = find_claude(spec.options.claude_path)
        argv = [binary, *spec.argv[1:]]
        extra = dict(spec.env)
        if spec.config_dir is not None:
            extra["CLAUDE_CONFIG_DIR"] = str(spec.config_dir)
        env = child_env(os.environ, extra)
        with tempfile.NamedTemporaryFile(prefix="channelcoder-stderr-", delete=False) as handle:
            stderr_path = Path(handle.name)
            try:
                process = await anyio.open_process(
                    argv, cwd=spec.cwd, env=env, stdin=subprocess.DEVNULL,
                    stdout=subprocess.PIPE, stderr=handle, start_new_session=True,
                )
            except OSError as exc:
                os.unlink(stderr_path)
                raise ClaudeNotFound(f"cannot start {binary}: {exc.strerror or exc}") from exc
        return NativeProcess(process, stderr_path, format_command(argv))

    def release(self) -> None:
        pass
