"""Workspace trust: a workspace is untrusted until the user says otherwise.

Trusted workspaces are recorded by resolved path in the state dir. Untrusted ones get the
bundled image only, no extra mounts, no env or MCP config from files, network `bridge`.
"""

from __future__ import annotations

import time
from pathlib import Path

from .state import file_lock, read_json, state_dir, write_json


def _store() -> Path:
    return state_dir() / "trusted.json"


def _key(workspace: Path) -> str:
    return str(workspace.expanduser().resolve())


def trusted_workspaces() -> dict[str, float]:
    data = read_json(_store(), {})
    return {str(k): float(v) for k, v in data.items()} if isinstance(data, dict) else {}


def is_trusted(workspace: Path) -> bool:
    return _key(workspace) in trusted_workspaces()


def set_trusted(workspace: Path, trusted: bool = True) -> None:
    store = _store()
    with file_lock(store.with_suffix(".lock")):
        data = trusted_workspaces()
        if trusted:
            data[_key(workspace)] = time.time()
        else:
            data.pop(_key(workspace), None)
        write_json(store, data)
