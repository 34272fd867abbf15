"""The `io.channelcoder.*` labels on containers and images, and the owner identity they carry.

An owner is one process on one host: `host|pid|start-time`, the start time (from
/proc/<pid>/stat, in clock ticks since boot) making it safe against pid reuse. A one-shot
container carries its owner in `OWNER`; a warm container carries none (it belongs to its
workspace) and names the process holding it, if any, in its lease file (`warm.Lease.owner`).
Any channelcoder process may remove a container whose owner ran on this host and is gone.
"""

from __future__ import annotations

import os
import socket

PREFIX = "io.channelcoder."
MANAGED = PREFIX + "managed"  # "1" on everything channelcoder makes
OWNER = PREFIX + "owner"  # the process a one-shot container (or a probe) belongs to
JOB = PREFIX + "job"
SESSION = PREFIX + "session"
WORKSPACE_LABEL = PREFIX + "workspace"
EXPIRES = PREFIX + "expires"  # a warm container's first expiry (epoch seconds)
WARM = PREFIX + "warm"  # a warm container: its host directory, which holds its lease
STANDBY = PREFIX + "standby"  # "1" on the language server's standby sandbox
IMAGE_KEY = PREFIX + "key"  # an auto-built image's content key
IMAGE_SOURCE = PREFIX + "source"  # where an auto-built image's Dockerfile came from


def _start_time(pid: int) -> str | None:
    try:
        with open(f"/proc/{pid}/stat", "rb") as handle:
            stat = handle.read().decode("ascii", "replace")
    except OSError:
        return None
    fields = stat.rsplit(")", 1)[-1].split()
    return fields[19] if len(fields) > 19 else None


def owner_identity(pid: int | None = None) -> tuple[str, int, str | None]:
    """(host, pid, start time) of `pid` (default: this process); no start time if it is gone."""
    pid = os.getpid() if pid is None else pid
    return socket.gethostname(), pid, _start_time(pid)


_mine: tuple[int, str] | None = None


def owner_label(pid: int | None = None) -> str:
    """`host|pid|start-time` of `pid` (default: this process)."""
    global _mine
    own = pid is None or pid == os.getpid()
    if own and _mine is not None and _mine[0] == os.getpid():
        return _mine[1]
    host, pid, start = owner_identity(pid)
    label = f"{host}|{pid}|{start or '?'}"
    if own:
        _mine = (pid, label)
    return label


def owner_alive(label: str) -> bool:
    """False only when the owner ran on this host and is gone (or its pid was reused)."""
    host, _, rest = label.partition("|")
    pid_text, _, start = rest.partition("|")
    if host != socket.gethostname() or not pid_text.isdigit():
        return True
    current = _start_time(int(pid_text))
    return current is not None and (start in ("?", "") or current == start)


def owner_labels() -> dict[str, str]:
    """The label that makes a container this process's own."""
    return {OWNER: owner_label()}
