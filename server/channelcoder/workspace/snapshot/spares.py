"""Spares: which snapshot of a workspace is made ahead of time and ready to be taken, so that the
next snapshot only writes what changed. One marker file per workspace names the ready spare;
one builder at a time makes it (`create.prepare_spare`).
"""

from __future__ import annotations

import hashlib
import os
from pathlib import Path

from ...state import HeldLock, atomic_write, file_lock, try_lock
from .store import lock_in_use, snapshots_dir


def spares_enabled() -> bool:
    return os.environ.get("CHANNELCODER_SPARE_SNAPSHOTS", "1") not in ("0", "false", "no")


def claim_spare(workspace: Path) -> tuple[str, HeldLock] | None:
    """Take the ready spare of a workspace, marked in use; None when there is none."""
    marker, marker_lock, _ = _spare_files(workspace)
    with file_lock(marker_lock):
        if not marker.exists():
            return None
        spare = marker.read_text().strip()
        marker.unlink(missing_ok=True)
    root = snapshots_dir() / spare
    if not spare or not (root / "meta.json").exists():
        return None
    return spare, lock_in_use(root)


def ready_spare(workspace: Path) -> str | None:
    """The id of the workspace's spare when one is ready."""
    marker, marker_lock, _ = _spare_files(workspace)
    with file_lock(marker_lock):
        ready = marker.read_text().strip() if marker.exists() else ""
    return ready if ready and (snapshots_dir() / ready / "meta.json").exists() else None


def mark_ready(workspace: Path, snapshot_id: str) -> None:
    marker, marker_lock, _ = _spare_files(workspace)
    with file_lock(marker_lock):
        atomic_write(marker, snapshot_id)


def try_builder(workspace: Path) -> HeldLock | None:
    """The right to build the workspace's spare; None while another builder has it."""
    return try_lock(_spare_files(workspace)[2])


def _spare_files(workspace: Path) -> tuple[Path, Path, Path]:
    key = hashlib.sha256(str(workspace).encode("utf-8", "surrogateescape")).hexdigest()[:16]
    base = snapshots_dir()
    return base / f".spare-{key}", base / f".spare-{key}.lock", base / f".spare-{key}.build"
