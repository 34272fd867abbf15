"""What a backend gives `jobs.py`: a running claude whose stdout can be read incrementally.

The backends: `native.NativeBackend` (the host's claude as a subprocess),
`sandbox.manager.SandboxManager` (a one-shot container), and the sandbox's warm backends (a
named session's warm container, the language server's standby, a CLI run's head start). All are
driven the same way, so the parser, timeouts, cancellation and result rules live once, in
`jobs.py`; which one runs a job is decided in `backend_choice.py`.
"""

from __future__ import annotations

from collections.abc import AsyncGenerator
from pathlib import Path
from typing import Protocol

from .claude.events import Status
from .launch import LaunchSpec, PreparedLaunch


class ClaudeProcess(Protocol):
    """A started claude. `read()` is cancellation-safe: a cancelled read loses no output."""

    command_line: str

    async def read(self) -> bytes:
        """The next stdout bytes; b"" at end of stream."""

    async def wait(self) -> int:
        """The exit code (after stdout ended)."""

    def stderr_tail(self) -> str:
        """The last lines of stderr, for error messages."""

    async def terminate(self) -> None:
        """Stop it now (SIGTERM, then SIGKILL after a short grace). Idempotent, never raises."""

    def failure(self) -> Exception | None:
        """A backend-level cause for an abnormal end (e.g. out of memory), if any."""


class Backend(Protocol):
    @property
    def snapshot_id(self) -> str | None:
        """A review snapshot this backend has ready for the job (a standby's), else None."""

    def prepare(self, spec: LaunchSpec) -> AsyncGenerator[Status | PreparedLaunch, None]:
        """Get ready to run (resolve and build the image, ...), reporting progress as it goes;
        the last item is the `PreparedLaunch` that `start()` takes."""

    async def start(self, prepared: PreparedLaunch) -> ClaudeProcess:
        """Start claude. The caller owns the process and must terminate() it."""

    def release(self) -> None:
        """The job is over, started or not: give back what the backend held for it. Blocking
        but quick, idempotent, never raises."""


class TailBuffer:
    """Keeps the last `limit` bytes written to it (stderr)."""

    def __init__(self, limit: int = 64 * 1024) -> None:
        self.limit = limit
        self._data = bytearray()

    def write(self, data: bytes) -> None:
        self._data += data
        if len(self._data) > self.limit:
            del self._data[: len(self._data) - self.limit]

    def text(self, lines: int = 20) -> str:
        decoded = self._data.decode("utf-8", "replace").strip()
        return "\n".join(decoded.splitlines()[-lines:])


def read_tail(path: Path, limit: int = 64 * 1024) -> bytes:
    try:
        with path.open("rb") as handle:
            handle.seek(0, 2)
            size = handle.tell()
            handle.seek(max(0, size - limit))
            return handle.read()
    except OSError:
        return b""
