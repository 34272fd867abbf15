"""Named sessions: the Claude session-id chain of a conversation and the options it began with.

One JSON file per session under `<state>/sessions/`, in ChannelCoder's shape plus ours:

    {"name", "sessionChain": [ids…], "currentSessionId", "messages": [{role, content, time}],
     "metadata": {created, lastActive, workspace, cwd, turns, costUsd, saved, snapshot, …},
     "options": {the options layer of the first turn}, "warm": null | {containerId, …}}

Every write takes the session's lock and replaces the file atomically, so concurrent writers
(two processes) never lose a turn and readers never see half a file. Turns of one session are
serialized by a second, longer-held lock (`SessionTurn`): each turn resumes the id the previous
one ended with. `warm` shows the session's kept-warm sandbox (container id, host dir, expiry),
written by `sandbox/warm/session_backend.py`; removing a session removes that sandbox too.
"""

from __future__ import annotations

import contextlib
import dataclasses
import datetime
import re
import secrets
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import anyio

from .config import DockerOptions, RunOptions, WorktreeOptions
from .errors import SessionError, UsageError
from .state import HeldLock, Periodic, file_lock, read_json, subdir, try_lock, write_json

_NAME = re.compile(r"^[^\W][\w.@+-]{0,127}$")
FORMAT_VERSION = 1
# Options that belong to one turn, never remembered by a session.
PER_TURN_OPTIONS = frozenset({"resume", "continue_", "session", "verbose", "timeout",
                              "idle_timeout", "max_jobs", "claude_path"})
UNSAVED_MAX_AGE = 7 * 24 * 3600.0


def sessions_dir() -> Path:
    return subdir("sessions")


def check_name(name: str) -> str:
    if not isinstance(name, str) or not _NAME.match(name):
        raise UsageError(
            f"invalid session name {name!r}",
            hint="use letters, digits and . _ - @ + (up to 128 characters, no slashes)")
    return name


def session_file(name: str) -> Path:
    return sessions_dir() / f"{check_name(name)}.json"


def new_name() -> str:
    stamp = datetime.datetime.now().strftime("%Y%m%d-%H%M%S")
    return f"session-{stamp}-{secrets.token_hex(2)}"


def _now_iso() -> str:
    return datetime.datetime.now(datetime.UTC).isoformat(timespec="milliseconds")


@dataclass
class SessionState:
    name: str
    session_chain: list[str] = field(default_factory=list)
    current_session_id: str | None = None
    messages: list[dict[str, Any]] = field(default_factory=list)
    metadata: dict[str, Any] = field(default_factory=dict)
    options: dict[str, Any] = field(default_factory=dict)
    warm: dict[str, Any] | None = None

    @property
    def workspace(self) -> str | None:
        value = self.metadata.get("workspace")
        return value if isinstance(value, str) else None

    @property
    def snapshot(self) -> str | None:
        value = self.metadata.get("snapshot")
        return value if isinstance(value, str) else None

    @property
    def saved(self) -> bool:
        return bool(self.metadata.get("saved", True))

    def to_json(self) -> dict[str, Any]:
        return {
            "version": FORMAT_VERSION,
            "name": self.name,
            "sessionChain": list(self.session_chain),
            "currentSessionId": self.current_session_id,
            "messages": list(self.messages),
            "metadata": dict(self.metadata),
            "options": dict(self.options),
            "warm": self.warm,
        }

    @classmethod
    def from_json(cls, name: str, data: Any) -> SessionState:
        if not isinstance(data, Mapping):
            raise SessionError(f"the session file of '{name}' is damaged",
                               hint=f"remove it: channelcoder sessions rm {name}")
        chain = [str(x) for x in data.get("sessionChain") or [] if x]
        current = data.get("currentSessionId") or (chain[-1] if chain else None)
        return cls(
            name=str(data.get("name") or name),
            session_chain=chain,
            current_session_id=str(current) if current else None,
            messages=[dict(m) for m in data.get("messages") or [] if isinstance(m, Mapping)],
            metadata=dict(data.get("metadata") or {}),
            options=dict(data.get("options") or {}),
            warm=dict(data["warm"]) if isinstance(data.get("warm"), Mapping) else None,
        )


# ---------------------------------------------------------------------------------------------
# The store


def load(name: str) -> SessionState | None:
    """The stored session, or None when there is none by that name."""
    path = session_file(name)
    if not path.exists():
        return None
    data = read_json(path, None)
    if data is None:
        raise SessionError(f"the session file of '{name}' cannot be read ({path})",
                           hint=f"remove it: channelcoder sessions rm {name}")
    return SessionState.from_json(name, data)


def exists(name: str) -> bool:
    return session_file(name).exists()


def list_sessions(*, include_unsaved: bool = False) -> list[SessionState]:
    """Every readable session, most recently active first."""
    found: list[SessionState] = []
    for path in sessions_dir().glob("*.json"):
        try:
            state = SessionState.from_json(path.stem, read_json(path, None))
        except SessionError:
            continue
        if state.saved or include_unsaved:
            found.append(state)
    found.sort(key=lambda s: str(s.metadata.get("lastActive") or ""), reverse=True)
    return found


def update(name: str, change: Callable[[SessionState], None]) -> SessionState:
    """Read-modify-write under the session's lock; the file is replaced atomically."""
    path = session_file(name)
    with file_lock(_lock_file(name)):
        state = load(name) or _new_state(name)
        change(state)
        write_json(path, state.to_json())
    return state


def create(name: str, *, workspace: Path | None = None, saved: bool = True) -> SessionState:
    """Make an empty session (or return the existing one unchanged)."""

    def touch(state: SessionState) -> None:
        if saved:
            state.metadata["saved"] = True
        else:
            state.metadata.setdefault("saved", False)
        if workspace is not None:
            state.metadata.setdefault("workspace", str(workspace))

    if not saved:
        _maybe_reap_unsaved()
    return update(name, touch)


def remove(name: str) -> Removed | None:
    """Forget a session's file, and its snapshot if one is kept for it; None when there was no
    such session. What it left in the sandbox is `session_cleanup.remove_session`'s to remove."""
    path = session_file(name)
    with file_lock(_lock_file(name)):
        if not path.exists():
            return None
        try:
            state = load(name)
        except SessionError:
            state = None
        path.unlink(missing_ok=True)
    if state is not None and state.snapshot:
        from .workspace.snapshot import discard

        discard(state.snapshot)
    return Removed(name, Path(state.workspace) if state is not None and state.workspace else None)


@dataclass(frozen=True)
class Removed:
    name: str
    workspace: Path | None


def rename(old: str, new: str) -> SessionState:
    """Save a session under another name (`Session.save(name)`)."""
    check_name(new)
    if old == new:
        return update(new, lambda s: s.metadata.__setitem__("saved", True))
    if exists(new):
        raise SessionError(f"a session named '{new}' already exists",
                           hint=f"choose another name, or remove it: channelcoder sessions rm {new}")
    source = load(old)
    if source is None:
        raise SessionError(f"there is no session named '{old}'")

    def copy(state: SessionState) -> None:
        for f in dataclasses.fields(SessionState):
            if f.name != "name":
                setattr(state, f.name, getattr(source, f.name))
        state.metadata["saved"] = True

    renamed = update(new, copy)
    session_file(old).unlink(missing_ok=True)
    return renamed


def reap_unsaved(max_age: float = UNSAVED_MAX_AGE) -> list[str]:
    """Remove sessions made by `session()` without a name that were never saved and are old."""
    removed: list[str] = []
    cutoff = time.time() - max_age
    for state in list_sessions(include_unsaved=True):
        if state.saved:
            continue
        path = session_file(state.name)
        with contextlib.suppress(OSError):
            if path.stat().st_mtime < cutoff and remove(state.name):
                removed.append(state.name)
    return removed


# Listing reads every session file: at most once an hour per process.
_maybe_reap_unsaved = Periodic(reap_unsaved, errors=(OSError, SessionError),
                               what="reaping unsaved sessions")


def _new_state(name: str) -> SessionState:
    now = _now_iso()
    return SessionState(name=name, metadata={"created": now, "lastActive": now, "turns": 0,
                                             "costUsd": 0.0})


def _lock_file(name: str) -> Path:
    return sessions_dir() / f".{name}.lock"


# ---------------------------------------------------------------------------------------------
# Options the session remembers


def options_layer(options: RunOptions) -> dict[str, Any]:
    """The options worth remembering, as a JSON-safe layer of the values that differ from defaults."""
    defaults = RunOptions()
    layer: dict[str, Any] = {}
    for f in dataclasses.fields(RunOptions):
        if f.name in PER_TURN_OPTIONS:
            continue
        value = getattr(options, f.name)
        if value == getattr(defaults, f.name):
            continue
        layer[f.name] = _jsonable(value)
    return layer


def _jsonable(value: Any) -> Any:
    if isinstance(value, WorktreeOptions):
        return {f.name: _jsonable(getattr(value, f.name)) for f in dataclasses.fields(value)}
    if isinstance(value, DockerOptions):
        defaults = DockerOptions()
        return {f.name: _jsonable(getattr(value, f.name)) for f in dataclasses.fields(value)
                if getattr(value, f.name) != getattr(defaults, f.name)}
    if isinstance(value, tuple | list):
        return [_jsonable(v) for v in value]
    if isinstance(value, Mapping):
        return {str(k): _jsonable(v) for k, v in value.items()}
    return value


# ---------------------------------------------------------------------------------------------
# One turn


class SessionTurn:
    """One job's turn of a named session: serialized with other turns, recorded at the end.

    `begin()` waits (cancellably) for the session's turn lock, so a second job of the same session
    starts only after the first has recorded the id it must resume. The lock is an flock: the
    kernel drops it if the process dies, so a crashed job never blocks a session.
    """

    POLL = 0.05

    def __init__(self, name: str, state: SessionState, held: HeldLock) -> None:
        self.name = name
        self.state = state
        self._held = held
        self.started = _now_iso()

    @property
    def resume_id(self) -> str | None:
        return self.state.current_session_id

    @property
    def snapshot(self) -> str | None:
        return self.state.snapshot

    @classmethod
    async def begin(cls, name: str, workspace: Path) -> SessionTurn:
        check_name(name)
        path = sessions_dir() / f".{name}.turn.lock"
        held = try_lock(path)
        while held is None:
            await anyio.sleep(cls.POLL)
            held = try_lock(path)
        try:
            state = await anyio.to_thread.run_sync(load, name) or _new_state(name)
        except BaseException:
            held.release()
            raise
        turn = cls(name, state, held)
        recorded = state.workspace
        if recorded and Path(recorded) != workspace:
            turn.release()
            raise SessionError(
                f"the session '{name}' belongs to the workspace {recorded}, not {workspace}",
                hint=f"run it from that workspace (-C {recorded}), or use another session name")
        return turn

    def record(self, *, prompt: str, options: RunOptions, workspace: Path, cwd: Path,
               session_id: str | None, text: str, ok: bool, cost_usd: float = 0.0,
               snapshot: str | None = None, error: str | None = None) -> SessionState:
        """Append this turn: the new Claude session id, the exchange, and where it ran."""

        def apply(state: SessionState) -> None:
            now = _now_iso()
            if not state.options and not state.session_chain:
                state.options = options_layer(options)
            if session_id and (not state.session_chain or state.session_chain[-1] != session_id):
                state.session_chain.append(session_id)
            if session_id:
                state.current_session_id = session_id
            state.messages.append({"role": "user", "content": prompt, "time": self.started})
            reply: dict[str, Any] = {"role": "assistant", "content": text, "time": now,
                                     "sessionId": session_id, "ok": ok}
            if error:
                reply["error"] = error
            state.messages.append(reply)
            meta = state.metadata
            meta.setdefault("created", now)
            meta["lastActive"] = now
            meta["turns"] = int(meta.get("turns", 0)) + 1
            meta["costUsd"] = round(float(meta.get("costUsd", 0.0)) + cost_usd, 6)
            meta.setdefault("workspace", str(workspace))
            meta["cwd"] = str(cwd)
            meta["docker"] = options.docker is not None
            if snapshot:
                meta["snapshot"] = snapshot
            if options.worktree is not None:
                meta["worktree"] = str(cwd)

        self.state = update(self.name, apply)
        return self.state

    def release(self) -> None:
        self._held.release()


def describe(state: SessionState) -> dict[str, Any]:
    """A one-line summary for `sessions ls` and the language server."""
    meta = state.metadata
    return {
        "name": state.name,
        "turns": int(meta.get("turns", 0)),
        "lastActive": meta.get("lastActive"),
        "created": meta.get("created"),
        "workspace": meta.get("workspace"),
        "currentSessionId": state.current_session_id,
        "docker": bool(meta.get("docker", False)),
        "costUsd": float(meta.get("costUsd", 0.0)),
        "saved": state.saved,
    }
