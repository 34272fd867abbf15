"""Where a job runs on the host, as `prepare_workplace` hands it to the job."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from ..claude.events import Changes


@dataclass
class Workplace:
    """Where a job runs on the host, and what it needs to hand back afterwards."""

    cwd: Path
    kind: str = "direct"
    extra_mounts: tuple[Path, ...] = ()
    collect: Callable[[], Changes | None] | None = None
    read_only_mounts: tuple[Path, ...] = ()
    # Blocking, idempotent clean-up after the run (unlock a snapshot, remove a keep=False
    # worktree); returns a notice for the user, if any. `ref`: the snapshot id / worktree path.
    release: Callable[[], str | None] | None = None
    ref: str | None = None
