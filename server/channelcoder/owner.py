"""Which process owns something: `host|pid|start-time`, safe against pid reuse.

The start time (from /proc/<pid>/stat, in clock ticks since boot) tells a reused pid from the
process that held it. Sandbox containers carry their owner in a label; review snapshots in
their meta file. Any channelcoder process may clean up after an owner that ran on this host
and is gone.
"""

from __future__ import annotations

import os
import socket


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
