"""Hosts the user allowed the sandbox to reach in a workspace ("Always for this workspace").

Kept in channelcoder's state dir, by resolved workspace path — never in the workspace's own
files: a job can write those, and nothing a job writes may widen its own sandbox.
"""

from __future__ import annotations

from pathlib import Path

from .state import file_lock, read_json, state_dir, write_json


def _store() -> Path:
    return state_dir() / "network-allowed.json"


def _key(workspace: Path) -> str:
    return str(workspace.expanduser().resolve())


def allowed_hosts(workspace: Path) -> tuple[str, ...]:
    """The host patterns the user allowed for `workspace`, oldest first."""
    data = read_json(_store(), {})
    hosts = data.get(_key(workspace), []) if isinstance(data, dict) else []
    return tuple(str(h) for h in hosts if isinstance(h, str))


def allow_host(workspace: Path, pattern: str) -> None:
    store = _store()
    with file_lock(store.with_suffix(".lock")):
        data = read_json(store, {})
        data = data if isinstance(data, dict) else {}
        hosts = [h for h in data.get(_key(workspace), []) if isinstance(h, str)]
        if pattern not in hosts:
            hosts.append(pattern)
        data[_key(workspace)] = hosts
        write_json(store, data)


def forget_hosts(workspace: Path) -> None:
    store = _store()
    with file_lock(store.with_suffix(".lock")):
        data = read_json(store, {})
        if isinstance(data, dict) and data.pop(_key(workspace), None) is not None:
            write_json(store, data)
