"""Workspace trust: a workspace is untrusted until the user says otherwise.

Trusted workspaces are recorded by resolved path in the state dir. Untrusted ones get the
bundled image only, no extra mounts, no env or MCP config from files, and none of the network
options from their files (the default: the egress proxy and its allowlist).
"""

from __future__ import annotations

import time
from pathlib import Path

from .state import WorkspaceTable

TRUSTED = WorkspaceTable("trusted.json")


def trusted_workspaces() -> dict[str, float]:
    return {str(k): float(v) for k, v in TRUSTED.read().items()}


def is_trusted(workspace: Path) -> bool:
    return TRUSTED.get(workspace) is not None


def set_trusted(workspace: Path, trusted: bool = True) -> None:
    TRUSTED.update(workspace, lambda _: time.time() if trusted else None)
