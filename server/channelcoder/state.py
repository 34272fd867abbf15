"""Where channelcoder keeps things on the host: XDG state and cache dirs, atomic writes, file
locks, and housekeeping that runs now and then.

`CHANNELCODER_STATE_DIR` / `CHANNELCODER_CACHE_DIR` override the XDG locations (tests use them
to keep every run's state private).
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import logging
import os
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import IO, Any

log = logging.getLogger(__name__)


def state_dir() -> Path:
    explicit = os.environ.get("CHANNELCODER_STATE_DIR")
    if explicit:
        path = Path(explicit)
    else:
        base = os.environ.get("XDG_STATE_HOME") or str(Path.home() / ".local" / "state")
        path = Path(base) / "channelcoder"
    path.mkdir(parents=True, exist_ok=True, mode=0o700)
    return path


def cache_dir() -> Path:
    explicit = os.environ.get("CHANNELCODER_CACHE_DIR")
    if explicit:
        path = Path(explicit)
    else:
        base = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
        path = Path(base) / "channelcoder"
    path.mkdir(parents=True, exist_ok=True, mode=0o700)
    return path


def subdir(name: str, *, cache: bool = False) -> Path:
    path = (cache_dir() if cache else state_dir()) / name
    path.mkdir(parents=True, exist_ok=True, mode=0o700)
    return path


def atomic_write(path: Path, data: str | bytes, mode: int = 0o600) -> None:
    """Write via a temp file in the same directory and rename: readers never see half a file."""
    path.parent.mkdir(parents=True, exist_ok=True)
    payload = data.encode() if isinstance(data, str) else data
    tmp = str(path.parent / f".{path.name}.{os.urandom(6).hex()}")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW | os.O_CLOEXEC, 0o600)
    try:
        with os.fdopen(fd, "wb") as handle:
            handle.write(payload)
            handle.flush()
            os.fsync(handle.fileno())
        os.chmod(tmp, mode)
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(tmp)
        raise


def write_json(path: Path, value: Any) -> None:
    atomic_write(path, json.dumps(value, indent=2, sort_keys=True) + "\n")


def read_json(path: Path, default: Any = None) -> Any:
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        return default
    except (OSError, ValueError):
        return default


class HeldLock:
    """An advisory lock (flock) held on a file until `release()` or the end of a `with` block.

    The kernel drops it when the process dies, so a crashed holder never blocks anyone.
    """

    def __init__(self, handle: IO[str]) -> None:
        self._handle: IO[str] | None = handle

    def release(self) -> None:
        """Let go of the lock (idempotent)."""
        handle, self._handle = self._handle, None
        if handle is not None:
            with contextlib.suppress(OSError):
                fcntl.flock(handle.fileno(), fcntl.LOCK_UN)
            handle.close()

    def __enter__(self) -> HeldLock:
        return self

    def __exit__(self, *exc: object) -> None:
        self.release()


def _take(path: Path, operation: int) -> HeldLock:
    handle = path.open("a+")
    try:
        fcntl.flock(handle.fileno(), operation)
    except BaseException:
        handle.close()
        raise
    return HeldLock(handle)


def file_lock(path: Path) -> HeldLock:
    """An exclusive lock on `path` (its directory is made), waiting for other holders."""
    path.parent.mkdir(parents=True, exist_ok=True)
    return _take(path, fcntl.LOCK_EX)


def shared_lock(path: Path) -> HeldLock:
    """A shared lock on `path`, waiting while someone holds it exclusively."""
    return _take(path, fcntl.LOCK_SH)


def try_lock(path: Path) -> HeldLock | None:
    """An exclusive lock on `path` without waiting; None when another holder has it."""
    try:
        return _take(path, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        return None


class WorkspaceTable:
    """A JSON object in the state dir with one entry per workspace (by resolved path), changed
    under a lock: what the user decided about a workspace, kept where no job can write."""

    def __init__(self, name: str) -> None:
        self.name = name

    @property
    def path(self) -> Path:
        return state_dir() / self.name

    @staticmethod
    def key(workspace: Path) -> str:
        return str(workspace.expanduser().resolve())

    def read(self) -> dict[str, Any]:
        data = read_json(self.path, {})
        return data if isinstance(data, dict) else {}

    def get(self, workspace: Path) -> Any:
        return self.read().get(self.key(workspace))

    def update(self, workspace: Path, change: Callable[[Any], Any]) -> None:
        """Replace the workspace's entry with `change(entry)`; None removes it."""
        path = self.path
        with file_lock(path.with_suffix(".lock")):
            data, key = self.read(), self.key(workspace)
            entry = change(data.get(key))
            if entry is None:
                data.pop(key, None)
            else:
                data[key] = entry
            write_json(path, data)


class Periodic:
    """Housekeeping run at most once per `interval` seconds in this process, never failing its
    caller: the `errors` it raises are logged and swallowed. The first call runs it."""

    def __init__(self, action: Callable[[], object], *, interval: float = 3600.0,
                 errors: tuple[type[BaseException], ...] = (OSError,), what: str = "") -> None:
        self._action = action
        self._interval = interval
        self._errors = errors
        self._what = what or getattr(action, "__name__", "housekeeping")
        self._last = 0.0
        self._guard = threading.Lock()

    def __call__(self) -> None:
        with self._guard:
            now = time.monotonic()
            if self._last and now - self._last < self._interval:
                return
            self._last = now
        try:
            self._action()
        except self._errors as exc:
            log.debug("%s failed: %s", self._what, exc)
