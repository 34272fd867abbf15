"""Hosts the user allowed the sandbox to reach in a workspace ("Always for this workspace").

Kept in channelcoder's state dir, by resolved workspace path — never in the workspace's own
files: a job can write those, and nothing a job writes may widen its own sandbox.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from .state import WorkspaceTable

ALLOWED = WorkspaceTable("network-allowed.json")


def _hosts(entry: Any) -> list[str]:
    return [h for h in entry if isinstance(h, str)] if isinstance(entry, list) else []


def allowed_hosts(workspace: Path) -> tuple[str, ...]:
    """The host patterns the user allowed for `workspace`, oldest first."""
    return tuple(_hosts(ALLOWED.get(workspace)))


def allow_host(workspace: Path, pattern: str) -> None:
    ALLOWED.update(workspace, lambda entry: list(dict.fromkeys([*_hosts(entry), pattern])))


def forget_hosts(workspace: Path) -> None:
    ALLOWED.update(workspace, lambda _: None)
