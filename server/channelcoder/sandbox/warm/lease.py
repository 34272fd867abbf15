"""A warm container's lease: until when it may live, and which process holds it, if any.

The lease is a file in the container's host directory, renewed by its holder; the reaper
(`sandbox/reaping.py`) reads it, which is why it lives apart from the rest of the warm code.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

from ...owner import owner_alive
from ...state import atomic_write, read_json, write_json
from ..labels import EXPIRES, WARM


@dataclass(frozen=True)
class Lease:
    expires: float
    owner: str | None = None


def write_lease(directory: Path, lease: Lease) -> None:
    atomic_write(directory / "clock" / "expires", f"{int(lease.expires)}\n", mode=0o644)
    write_json(directory / "lease.json", {"expires": lease.expires, "owner": lease.owner})


def read_lease(directory: Path) -> Lease | None:
    data = read_json(directory / "lease.json", None)
    if not isinstance(data, Mapping):
        return None
    try:
        return Lease(float(data["expires"]), data.get("owner") or None)
    except (KeyError, TypeError, ValueError):
        return None


def lease_stale(labels: Mapping[str, str], now: float) -> bool:
    """For `reap_orphans`: is this warm container past its lease (or its holder gone)?"""
    lease = read_lease(Path(labels.get(WARM, "")))
    if lease is None:
        try:
            return float(labels.get(EXPIRES, "0")) < now
        except ValueError:
            return True
    return lease.expires < now or (lease.owner is not None and not owner_alive(lease.owner))
