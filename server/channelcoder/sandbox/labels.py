"""The `io.channelcoder.*` labels on containers and images, and the owner they carry.

An owner is one process on one host (`owner.owner_label()`: host, pid and start time). A one-shot
container carries its owner in `OWNER`; a warm container carries none (it belongs to its
workspace) and names the process holding it, if any, in its lease file (`warm.Lease.owner`).
Any channelcoder process may remove a container whose owner ran on this host and is gone.
"""

from __future__ import annotations

from ..owner import owner_label

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


def owner_labels() -> dict[str, str]:
    """The label that makes a container this process's own."""
    return {OWNER: owner_label()}
