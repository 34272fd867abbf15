"""Removing containers by owner: those of processes that are gone (any channelcoder process
does this when it first connects) and, at a process's exit, every one it still owns.

A one-shot container names its owner in its `OWNER` label; a warm one names the process holding
it, if any, in its lease file (`warm.Lease.owner`), and its lease also says until when it lives.
"""

from __future__ import annotations

import contextlib
import logging
import time
from pathlib import Path
from typing import Any

from ..owner import owner_alive
from .container.process import force_remove
from .labels import EXPIRES, MANAGED, OWNER, WARM
from .warm.lease import lease_stale, read_lease

log = logging.getLogger(__name__)


def reap_orphans(api: Any, *, now: float | None = None) -> list[str]:
    """Remove managed containers whose owner process is gone, or whose warm time expired."""
    now = time.time() if now is None else now
    removed: list[str] = []
    for container in api.containers(all=True, filters={"label": f"{MANAGED}=1"}):
        labels = container.get("Labels") or {}
        owner = labels.get(OWNER, "")
        expires = labels.get(EXPIRES)
        stale = bool(owner) and not owner_alive(owner)
        with contextlib.suppress(ValueError):
            stale = stale or (expires is not None and float(expires) < now)
        if labels.get(WARM):  # the lease file extends the label's first expiry
            stale = lease_stale(labels, now)
        if stale:
            with contextlib.suppress(Exception):
                api.remove_container(container["Id"], force=True)
                removed.append(str(container["Id"]))
    return removed


def remove_owned(api: Any, owner: str) -> list[str]:
    """Remove every container `owner` holds: its one-shot containers and the warm ones whose
    lease names it (a standby, a turn under way). Blocking; the last step of an owner's exit."""
    removed: list[str] = []
    for container in api.containers(all=True, filters={"label": f"{MANAGED}=1"}):
        labels = container.get("Labels") or {}
        if labels.get(WARM):
            lease = read_lease(Path(labels[WARM]))
            owned = lease is not None and lease.owner == owner
        else:
            owned = labels.get(OWNER) == owner
        if owned:
            try:
                force_remove(api, str(container["Id"]))
                removed.append(str(container["Id"]))
            except Exception as exc:
                log.warning("could not remove the sandbox container %s: %s",
                            str(container["Id"])[:12], exc)
    return removed
