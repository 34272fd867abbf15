"""Where a job runs on the host, as `prepare_workplace` hands it to the job."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from ..claude.events import Changes, HostRunChange, SecurityEvent


@dataclass(frozen=True)
class PlaceMount:
    """A host path the sandbox needs at `target`: absolute, or relative to where the job runs
    (`.git` is the workspace's own `.git`)."""

    host: Path
    target: str
    read_only: bool = False


@dataclass
class AfterJob:
    """What the host-side check after a job found and did."""

    events: list[SecurityEvent] = field(default_factory=list)
    notices: list[str] = field(default_factory=list)
    runs_on_host: tuple[HostRunChange, ...] = ()


@dataclass
class Workplace:
    """Where a job runs on the host, and what it needs to hand back afterwards."""

    cwd: Path
    kind: str = "direct"
    collect: Callable[[], Changes | None] | None = None
    mounts: tuple[PlaceMount, ...] = ()
    # Blocking: the check after the job (run once, on every outcome; see Job).
    after_job: Callable[[], AfterJob] | None = None
    # What the check of an earlier job found when this one started (its process had died).
    before_job: AfterJob = field(default_factory=AfterJob)
    # Blocking, idempotent clean-up after the run (unlock a snapshot, remove a keep=False
    # worktree); returns a notice for the user, if any. `ref`: the snapshot id / worktree path.
    release: Callable[[], str | None] | None = None
    ref: str | None = None
