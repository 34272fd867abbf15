"""Where snapshots live: `<state>/snapshots/<id>/`, their meta.json, their locks, and their end.

A snapshot in use holds a shared lock on its `.lock` file; discarding one takes the lock
exclusively without waiting, so a snapshot in use is never removed.
"""

from __future__ import annotations

import secrets
import shutil
import time
from pathlib import Path
from typing import Any

from ...owner import owner_identity
from ...state import HeldLock, Periodic, read_json, shared_lock, subdir, try_lock, write_json

EXPIRY = 7 * 24 * 3600.0


def snapshots_dir() -> Path:
    return subdir("snapshots")


def new_id() -> str:
    return f"snap-{secrets.token_hex(6)}"


def read_meta(snapshot_id: str) -> dict[str, Any] | None:
    """A snapshot's meta.json, or None when the id names no usable snapshot."""
    if not snapshot_id or "/" in snapshot_id or snapshot_id.startswith("."):
        return None
    meta = read_json(snapshots_dir() / snapshot_id / "meta.json", None)
    return meta if isinstance(meta, dict) and meta.get("base") else None


def touch_meta(root: Path, **changes: Any) -> None:
    meta = read_json(root / "meta.json", None)
    if isinstance(meta, dict):
        meta.update(changes)
        write_json(root / "meta.json", meta)


def owner() -> dict[str, Any]:
    """Who made a snapshot, for meta.json."""
    host, pid, start = owner_identity()
    return {"host": host, "pid": pid, "start": start or ""}


def list_snapshots() -> list[dict[str, Any]]:
    found = []
    for meta_file in snapshots_dir().glob("*/meta.json"):
        meta = read_json(meta_file, None)
        if isinstance(meta, dict):
            found.append(meta)
    return sorted(found, key=lambda m: float(m.get("lastUsed", 0)), reverse=True)


def lock_in_use(root: Path) -> HeldLock:
    """Mark a snapshot in use (a shared lock; its directory is made)."""
    root.mkdir(parents=True, exist_ok=True, mode=0o700)
    return shared_lock(root / ".lock")


def clear_partial(root: Path) -> None:
    """Remove what a failed or interrupted creation left behind (the lock file stays)."""
    for child in root.iterdir():
        if child.name == ".lock":
            continue
        if child.is_dir() and not child.is_symlink():
            shutil.rmtree(child, ignore_errors=True)
        else:
            child.unlink(missing_ok=True)


def discard(snapshot_id: str) -> bool:
    """Delete a snapshot (its proposal was applied or rejected). False if gone or in use."""
    if not snapshot_id or "/" in snapshot_id or snapshot_id.startswith("."):
        return False
    root = snapshots_dir() / snapshot_id
    if not root.exists():
        return False
    try:
        held = try_lock(root / ".lock")
    except OSError:
        return False
    if held is None:
        return False
    with held:
        shutil.rmtree(root, ignore_errors=True)
    return not root.exists()


def reap_expired(max_age: float = EXPIRY) -> list[str]:
    """Remove snapshots unused for `max_age` seconds (default 7 days) and not in use now."""
    removed: list[str] = []
    cutoff = time.time() - max_age
    for root in snapshots_dir().iterdir():
        if not root.is_dir():
            continue
        meta = read_json(root / "meta.json", None)
        last = float(meta.get("lastUsed", 0)) if isinstance(meta, dict) else _mtime(root)
        if last < cutoff and discard(root.name):
            removed.append(root.name)
    return removed


maybe_reap = Periodic(reap_expired, what="snapshot reaping")


def _mtime(path: Path) -> float:
    try:
        return path.stat().st_mtime
    except OSError:
        return 0.0
