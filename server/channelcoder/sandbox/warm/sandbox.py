"""Warm sandboxes: a container kept alive between jobs (`keep_warm`).

A warm container does not run claude as its command: it runs a tiny watchdog shell loop and
claude runs in it through `exec` (a live process, `live.py`). It belongs to the workspace, not to
the process that made it: it carries no owner label, so a later CLI run or another editor can
reuse it. Its host directory is `<state>/sandbox/warm/<name>/`:

    meta.json     container id, container key, session, the current live process
    lease.json    {"expires": epoch, "owner": owner label or null} — read by every reaper
    lock          flock held while a job runs a turn in it
    clock/expires the lease's epoch as plain text — mounted read-only at
                  /channelcoder/warm/clock for the watchdog inside the container
    live/<id>/    one live claude's stdin FIFO, stdout/stderr files, pid and exit code —
                  mounted read-write at /channelcoder/warm/live
    egress/       in `proxy` network mode, the egress proxy's socket — mounted read-only;
                  served only by the process holding the container (`serve_egress`)

Nothing that decides the container's lifetime or identity is writable from inside it.

On a remote engine (`meta["remote"]`) no directory of this machine can be mounted: `live/` and
`clock/` are tmpfs mounts under /channelcoder-warm in the container instead (/channelcoder is a
read-only volume there; the clock's tmpfs is owned by root, written by a root
`exec` that needs no capability, so a sandbox running as any other user cannot move it), the
watchdog starts from the first expiry it is given, and the egress proxy is reached through an
exec'd channel (`sandbox.remote.channel`) opened by the holder. The host directory keeps the
meta, the lease and the lock as for a local one.

Docker labels cannot change after creation, so the `io.channelcoder.expires` label holds the
first expiry and the lease file the current one (extended after every turn). Expiry is enforced
twice: the watchdog exits at the lease's time (the engine then removes the container, even when
no channelcoder process runs), and `reap_orphans` in any channelcoder process removes a warm
container whose lease expired or whose lease holder died mid-turn.

While a process holds the container (a turn under way, or the language server's standby), it
also holds a `Lifeline`: a `GUARD` shell exec'd in the container with its stdin attached from
that process. When the holder lets go it says so on that stdin first; when it dies instead, the
engine closes the stdin and the guard stops the container's claude (SIGTERM, so its transcript
is written) and then the container — within seconds, with no other channelcoder process needed.
"""

from __future__ import annotations

import contextlib
import dataclasses
import functools
import hashlib
import json
import logging
import os
import secrets
import shutil
import threading
import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import anyio

from ...state import HeldLock, read_json, subdir, try_lock, write_json
from .. import engine as eng
from ..container.egress_link import EgressLink, is_link_mount
from ..container.mounts import Mount
from ..container.process import ContainerSpec, create_args, force_remove, run_line
from ..labels import EXPIRES, OWNER, WARM
from .lease import Lease, write_lease

log = logging.getLogger(__name__)

WARM_MOUNT = "/channelcoder/warm"
WATCHDOG = (f'while :; do read -r e < {WARM_MOUNT}/clock/expires || exit 0; '
            '[ "$(date +%s)" -lt "${e%.*}" ] || exit 0; sleep 1; done')
REMOTE_WARM_MOUNT = "/channelcoder-warm"
REMOTE_WATCHDOG = (f'e="$1"; c={REMOTE_WARM_MOUNT}/clock/expires; while :; do '
                   '[ -f "$c" ] && { read -r e <"$c" || exit 0; }; '
                   '[ "$(date +%s)" -lt "${e%.*}" ] || exit 0; sleep 1; done')
REMOTE_TMPFS = {f"{REMOTE_WARM_MOUNT}/live": "rw,nosuid,nodev,mode=1777,size=64m",
                f"{REMOTE_WARM_MOUNT}/clock": "rw,noexec,nosuid,nodev,mode=755,size=64k"}
SET_CLOCK = f'printf "%s\\n" "$1" >{REMOTE_WARM_MOUNT}/clock/expires'

# `$1` is the live directory inside. A holder that lets go writes "release" first; anything else
# (end of file: the holder is gone) stops every live claude, waits up to 3 s for them, then ends
# the container: PID 1 is the engine's init (`Init`), which passes the TERM on to the watchdog.
RELEASE = b"release\n"
GUARD = ('read -r word; [ "$word" = release ] && exit 0; '
         'for f in "$1"/*/pid; do [ -f "${f%/pid}/exit" ] || { read -r p <"$f" && kill -TERM "$p"; }; '
         'done 2>/dev/null; n=0; while [ "$n" -lt 3 ]; do busy=; for f in "$1"/*/pid; do '
         '[ -f "$f" ] && [ ! -f "${f%/pid}/exit" ] && busy=1; done; [ -z "$busy" ] && break; '
         'sleep 1; n=$((n + 1)); done; kill -TERM 1')
IN_USE_MARGIN = 120.0


def warm_root() -> Path:
    return subdir("sandbox/warm")


def _digest(value: object) -> str:
    return hashlib.sha256(json.dumps(value, sort_keys=True, default=str).encode()).hexdigest()[:24]


def container_key(container: ContainerSpec, image_id: str) -> str:
    """What makes two containers interchangeable: everything but claude's argv and the labels.

    Environment values are hashed into the key, never stored.
    """
    return _digest({
        "image": container.image, "imageId": image_id, "user": container.user,
        "env": {k: hashlib.sha256(v.encode()).hexdigest() for k, v in container.env.items()},
        "mounts": [f"egress:{m.container}" if is_link_mount(m) else m.bind
                   for m in container.mounts], "memory": container.memory,
        "cpus": container.cpus, "pids": container.pids_limit, "network": container.network,
        "tmpfs": dict(container.tmpfs), "workdir": container.workdir,
        "readOnly": container.read_only,
    })


# ---------------------------------------------------------------------------------------------
# Leases


# ---------------------------------------------------------------------------------------------
# The holder's lifeline


class Lifeline:
    """The holder's end of a warm container's `GUARD` (its stdin, attached by this process)."""

    def __init__(self, stream: Any) -> None:
        self._stream = stream

    @classmethod
    def attach(cls, engine: eng.Engine, container_id: str, live_dir: str) -> Lifeline:
        """Start the guard in the container (as the container's user). Blocking."""
        api = engine.stream_api
        made = api.exec_create(container_id, ["sh", "-c", GUARD, "sh", live_dir],
                               stdin=True, stdout=True, stderr=False)  # its end ends the stream
        return cls(api.exec_stream(made["Id"]))

    def release(self) -> None:
        """Let go: the guard exits and the container stays (closed once it has exited: the
        word must arrive before the end of file, which would stop the container)."""
        try:
            self._stream.send(RELEASE)
        except OSError:
            self.cut()
        else:
            self._stream.close_when_done()

    def cut(self) -> None:
        """Close without letting go (as a dying holder would): the guard ends the container."""
        with contextlib.suppress(Exception):
            self._stream.close()


# ---------------------------------------------------------------------------------------------
# The container


@dataclass
class WarmSandbox:
    """A warm container and its host directory (see the module doc)."""

    dir: Path
    container_id: str
    key: str
    meta: dict[str, Any] = field(default_factory=dict)
    _lock: HeldLock | None = field(default=None, repr=False)
    _lifeline: Lifeline | None = field(default=None, repr=False)
    _holding: threading.Thread | None = field(default=None, repr=False)
    _egress: EgressLink | None = field(default=None, repr=False)
    _channel: Any = field(default=None, repr=False)

    @property
    def short_id(self) -> str:
        return self.container_id[:12]

    @property
    def remote(self) -> bool:
        return bool(self.meta.get("remote"))

    @property
    def live_dir(self) -> str:
        """Where its live claudes' directories are, in the container."""
        return f"{REMOTE_WARM_MOUNT if self.remote else WARM_MOUNT}/live"

    @classmethod
    def open(cls, directory: Path) -> WarmSandbox | None:
        meta = read_json(directory / "meta.json", None)
        if not isinstance(meta, dict) or not meta.get("containerId") or not meta.get("key"):
            return None
        return cls(directory, str(meta["containerId"]), str(meta["key"]), meta)

    @classmethod
    async def create(cls, engine: eng.Engine, container: ContainerSpec, key: str, *,
                     lease: Lease, meta: Mapping[str, Any], uid: int | None = None,
                     gid: int | None = None, remote: bool = False) -> WarmSandbox:
        """Start a warm container (its watchdog as the command); claude is exec'd later. On a
        remote engine `container` mounts volumes only (`sandbox.remote`)."""
        directory = await anyio.to_thread.run_sync(_make_dir, lease, uid, gid)
        labels = {k: v for k, v in container.labels.items() if k != OWNER}
        labels.update({WARM: str(directory), EXPIRES: f"{lease.expires:.0f}"})
        if remote:
            spec = dataclasses.replace(
                container, argv=["sh", "-c", REMOTE_WATCHDOG, "sh", f"{lease.expires:.0f}"],
                labels=labels, lifeline=False, tmpfs={**container.tmpfs, **REMOTE_TMPFS})
        else:
            mounts = tuple(Mount(directory / "egress", m.container, read_only=True)
                           if is_link_mount(m) else m for m in container.mounts)
            spec = dataclasses.replace(
                container, argv=["sh", "-c", WATCHDOG], labels=labels, lifeline=False,
                mounts=(*mounts, Mount(directory / "live", f"{WARM_MOUNT}/live"),
                        Mount(directory / "clock", f"{WARM_MOUNT}/clock", read_only=True)))
        made: list[str] = []

        def create_start() -> str:
            cid = str(engine.api.create_container(create_args(spec))["Id"])
            made.append(cid)
            engine.api.start(cid)
            return cid

        try:
            cid = await eng.call("starting the warm sandbox", create_start, abandon=False)
        except BaseException:
            with anyio.CancelScope(shield=True):
                if made:
                    with contextlib.suppress(Exception):
                        await eng.call("removing the sandbox", force_remove, engine.api, made[0])
                await anyio.to_thread.run_sync(_forget, directory)
            raise
        warm = cls(directory, cid, key, {**meta, "containerId": cid, "key": key,
                                         "created": time.time(), "runLine": run_line(spec),
                                         "remote": remote, "user": container.user,
                                         "engineHost": engine.host})
        await anyio.to_thread.run_sync(warm.save)
        return warm

    def save(self) -> None:
        with contextlib.suppress(OSError):
            write_json(self.dir / "meta.json", self.meta)

    def lease(self, lease: Lease, engine: eng.Engine | None = None) -> None:
        """Record the lease (blocking); a remote container's clock is set through `engine`."""
        with contextlib.suppress(OSError):
            write_lease(self.dir, lease)
        if self.remote and engine is not None:
            try:
                made = engine.api.exec_create(self.container_id,
                                              ["sh", "-c", SET_CLOCK, "sh", f"{lease.expires:.0f}"],
                                              user="0", stdout=False, stderr=False)
                engine.api.exec_start(made["Id"])
            except Exception as exc:
                log.warning("could not set the warm sandbox %s's clock: %s", self.short_id, exc)

    def hold(self, engine: eng.Engine) -> None:
        """Hold the container for this process (see `Lifeline`) until `let_go()`/`remove()`.
        The guard starts in the background: a turn does not wait for its `exec`."""
        if self._holding is not None:
            return

        def attach() -> None:
            try:
                self._lifeline = Lifeline.attach(engine, self.container_id, self.live_dir)
            except Exception as exc:
                log.warning("the warm sandbox %s has no lifeline: %s", self.short_id, exc)

        self._holding = threading.Thread(target=attach, name="channelcoder-lifeline",
                                         daemon=True)
        self._holding.start()

    def serve_egress(self, link: EgressLink | None, engine: eng.Engine | None = None) -> None:
        """`proxy` mode: while this process holds the container, `link`'s proxy is its way
        out (one that served before, e.g. the standby's own, stops first); on a remote engine
        through a channel exec'd via `engine`, connected before this returns. Blocking."""
        if link is None or link is self._egress:
            return
        self.stop_egress()
        if not self.remote:
            link.serve(self.dir / "egress")
            self._egress = link
            return
        from ..container.egress_link import SOCKET_NAME
        from ..remote.channel import EgressChannel

        assert engine is not None, "a remote warm sandbox's egress needs its engine"
        link.serve()
        self._egress = link
        self._channel = EgressChannel(engine.stream_api, self.container_id,
                                      link.directory / SOCKET_NAME)
        self._channel.open(wait=10.0)

    def stop_egress(self) -> None:
        channel, self._channel = self._channel, None
        if channel is not None:
            channel.close()
        link, self._egress = self._egress, None
        if link is not None:
            link.close()

    def let_go(self, *, release: bool = True) -> None:
        """Stop holding it: released (it stays warm), or cut (its guard ends it); its egress
        proxy stops either way. Blocking."""
        self.stop_egress()
        holding, self._holding = self._holding, None
        if holding is None:
            return
        holding.join(10)
        lifeline, self._lifeline = self._lifeline, None
        if lifeline is not None:
            if release:
                lifeline.release()
            else:
                lifeline.cut()

    def lock(self) -> bool:
        """Take the turn lock (non-blocking); False when another process holds it."""
        if self._lock is not None:
            return True
        self._lock = try_lock(self.dir / "lock")
        return self._lock is not None

    def unlock(self) -> None:
        if self._lock is not None:
            self._lock.release()
            self._lock = None

    async def running(self, engine: eng.Engine) -> bool:
        try:
            state = (await eng.call("inspecting the warm sandbox", engine.api.inspect_container,
                                    self.container_id)).get("State", {})
        except Exception:
            return False
        return bool(state.get("Running")) and not state.get("Paused")

    async def remove(self, engine: eng.Engine | None) -> None:
        """Force-remove the container and forget its directory. Never raises."""
        self.unlock()
        if engine is not None:
            try:
                await eng.call("removing the warm sandbox", force_remove, engine.api,
                               self.container_id)
            except Exception as exc:
                log.warning("could not remove the warm sandbox %s: %s", self.short_id, exc)
        await anyio.to_thread.run_sync(functools.partial(self.let_go, release=False))
        await anyio.to_thread.run_sync(_forget, self.dir)


def _make_dir(lease: Lease, uid: int | None, gid: int | None) -> Path:
    """A new warm directory: live/ (the sandbox's, writable inside), clock/, the lease."""
    directory = warm_root() / f"w-{secrets.token_hex(6)}"
    directory.mkdir(mode=0o700)
    (directory / "live").mkdir(mode=0o700)
    (directory / "clock").mkdir(mode=0o755)
    (directory / "egress").mkdir(mode=0o755)
    if uid is not None and os.geteuid() == 0 and uid != 0:
        os.chown(directory / "live", uid, gid if gid is not None else uid)
    write_lease(directory, lease)
    return directory


def _forget(directory: Path) -> None:
    shutil.rmtree(directory, ignore_errors=True)


def remove_blocking(directory: Path, container_id: str | None = None) -> None:
    """Remove a warm sandbox from blocking code (`sessions.remove`). Never raises."""
    cid = container_id
    if cid is None:
        warm = WarmSandbox.open(directory)
        cid = warm.container_id if warm is not None else None
    if cid:
        try:
            connected = eng.connect()
            force_remove(connected.api, cid)
        except Exception as exc:
            log.warning("could not remove the warm sandbox %s: %s", cid[:12], exc)
    if directory.parent == warm_root():
        shutil.rmtree(directory, ignore_errors=True)


_pruned = False


async def housekeeping(engine: eng.Engine) -> None:
    """Once per process: forget the directories of warm containers that are gone."""
    global _pruned
    if _pruned:
        return
    _pruned = True
    try:
        removed = await eng.call("pruning warm sandboxes", prune_dirs, engine.api,
                                 host=engine.host)
        if removed:
            log.info("forgot %d expired warm sandbox director(ies)", len(removed))
    except Exception as exc:
        log.debug("could not prune warm sandbox directories: %s", exc)


def prune_dirs(api: Any, *, grace: float = 60.0, host: str | None = None) -> list[Path]:
    """Forget warm directories whose container is gone (the watchdog removed it) from the
    engine `api` reaches, at `host`: a warm sandbox on another engine is not looked for here.
    Blocking."""
    root = warm_root()
    alive = {str(c.get("Labels", {}).get(WARM)) for c in
             api.containers(all=True, filters={"label": WARM})}
    removed: list[Path] = []
    for directory in root.iterdir():
        if not directory.is_dir() or str(directory) in alive:
            continue
        meta = read_json(directory / "meta.json", None)
        made_on = meta.get("engineHost") if isinstance(meta, dict) else None
        if host is not None and made_on and made_on != host:
            continue
        with contextlib.suppress(OSError):
            if time.time() - directory.stat().st_mtime > grace:
                shutil.rmtree(directory, ignore_errors=True)
                removed.append(directory)
    return removed
