"""What a backend gives `jobs.py`: a running claude whose stdout can be read incrementally.

Two backends implement it: `native.NativeBackend` (the host's claude as a subprocess) and
`sandbox.manager.SandboxManager` (claude inside a container). Both are driven the same way, so
the parser, timeouts, cancellation and result rules live once, in `jobs.py`.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Protocol

from .claude.events import Status
from .config import RunOptions


@dataclass
class LaunchSpec:
    """One claude run, independent of where it runs.

    `argv[0]` is a placeholder ("claude"); the backend substitutes its binary. `cwd` is the host
    directory the job works in (workspace, worktree or snapshot); `workspace` the user's root.
    """

    argv: list[str]
    cwd: Path
    workspace: Path
    options: RunOptions
    job_id: str
    env: Mapping[str, str] = field(default_factory=dict)
    session: str | None = None
    config_dir: Path | None = None
    extra_mounts: tuple[Path, ...] = ()
    # Host paths mounted read-only at the same path (a snapshot's borrowed git object store).
    read_only_mounts: tuple[Path, ...] = ()


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
    def prepare(self, spec: LaunchSpec) -> AsyncIterator[Status]:
        """Get ready to run (resolve and build the image, ...), reporting progress as it goes."""

    async def start(self, spec: LaunchSpec) -> ClaudeProcess:
        """Start claude. The caller owns the process and must terminate() it."""


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
