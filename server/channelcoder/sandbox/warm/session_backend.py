"""Named sessions in a warm sandbox.

`WarmBackend` is the backend of a Docker job of a saved named session with `keep_warm > 0`
(`backend_choice.choose_backend`). A turn runs in the session's warm container when its container key
matches (same image, mounts, environment, limits: `warm.container_key`) — else that container is
removed and a new one started — and, inside it, in the session's live claude process when that
process was started with the same flags and holds the conversation the turn resumes; otherwise
the old process is stopped and a fresh `claude --resume <id>` is spawned in the same container.
After the turn the container stays up for `keep_warm` seconds (its lease), with the live
process idle, for the next turn from this or any other channelcoder process.

On a remote engine the warm container mounts the session's volumes (`sandbox.remote`): before
each turn what changed here since the last one is sent to them, after it what the turn changed
comes back, and its live claude is reached through `exec` (`remote.live.ContainerLive`).

A warm container that cannot be used falls back to the manager's one-shot container.
"""

from __future__ import annotations

import functools
import logging
import time
from collections.abc import AsyncGenerator, Awaitable, Callable, Coroutine
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import anyio

from ...backend import ClaudeProcess
from ...claude.events import Status
from ...config import DockerOptions
from ...errors import SandboxError
from ...launch import LaunchSpec, PreparedLaunch
from ...owner import owner_label
from .. import engine as eng
from ..container.process import ContainerSpec
from ..manager import PlannedContainer, PreparedSandbox, SandboxManager, sandbox_user
from .lease import Lease
from .live import Live, LiveProcess, LiveTurn, LiveUnavailable, exec_line, split_argv
from .sandbox import IN_USE_MARGIN, WarmSandbox, container_key, housekeeping, warm_root

if TYPE_CHECKING:
    from ..remote.places import RemotePlaces

log = logging.getLogger(__name__)

OnEnd = Callable[[str, "dict[str, Any] | None"], Awaitable[None]]


@dataclass
class PreparedWarm(PreparedSandbox):
    """A session turn's launch with its container planned (to compare with the warm one)."""

    planned: PlannedContainer | None = None


class WarmBackend:
    snapshot_id: str | None = None

    def __init__(self, manager: SandboxManager) -> None:
        self.manager = manager

    async def prepare(self, spec: LaunchSpec) -> AsyncGenerator[Status | PreparedLaunch, None]:
        assert spec.session is not None
        starting: Status | None = None
        async for item in self.manager.prepare_sandbox(spec):
            if isinstance(item, Status) and item.phase == "starting-sandbox":
                starting = item
            elif isinstance(item, PreparedSandbox):
                planned = await self.manager.plan(item)
                found = await anyio.to_thread.run_sync(find_for_session, spec.session,
                                                       spec.workspace)
                if found is not None and found.key == container_key(
                        await warm_container(self.manager, spec, planned),
                        planned.resolved.image_id):
                    starting = Status("starting-sandbox", f"reusing the warm sandbox "
                                                          f"{found.short_id} of session "
                                                          f"{spec.session}")
                if starting is not None:
                    yield starting
                yield PreparedWarm(spec, item.image, planned)
            else:
                yield item

    async def start(self, prepared: PreparedLaunch) -> ClaudeProcess:
        spec = prepared.spec
        if spec.session:
            await until_retired(spec.session)
        planned = prepared.planned if isinstance(prepared, PreparedWarm) else None
        if planned is None:
            planned = await self.manager.plan(prepared)
        try:
            return await session_turn(self.manager, planned, spec)
        except (LiveUnavailable, SandboxError) as exc:
            log.warning("the warm sandbox could not be used (%s); starting a one-shot sandbox",
                        exc)
            return await self.manager.start(prepared)

    def release(self) -> None:
        pass


# ---------------------------------------------------------------------------------------------
# Sessions


def find_for_session(name: str, workspace: Path) -> WarmSandbox | None:
    """The session's warm sandbox, from the warm directories' meta files. Blocking."""
    found: list[WarmSandbox] = []
    for directory in warm_root().iterdir():
        warm = WarmSandbox.open(directory)
        if warm is not None and warm.meta.get("session") == name and \
                warm.meta.get("workspace") == str(workspace.resolve()):
            found.append(warm)
    found.sort(key=lambda w: float(w.meta.get("created") or 0), reverse=True)
    return found[0] if found else None


def remove_for_session(name: str, workspace: Path | None = None) -> int:
    """Remove a session's warm sandboxes (`sessions.remove`). Blocking; never raises."""
    from .sandbox import remove_blocking

    count = 0
    for directory in list(warm_root().iterdir()):
        warm = WarmSandbox.open(directory)
        if warm is None or warm.meta.get("session") != name:
            continue
        if workspace is not None and warm.meta.get("workspace") != str(workspace.resolve()):
            continue
        remove_blocking(directory, warm.container_id)
        count += 1
    return count


def _record_in_session(name: str, warm: WarmSandbox | None, expires: float) -> None:
    """Show the warm sandbox in the session file (`warm`), when the session exists."""
    from ... import sessions

    if not sessions.exists(name):
        return
    value = None if warm is None else {"containerId": warm.container_id, "dir": str(warm.dir),
                                       "expires": round(expires, 3)}

    def change(state: sessions.SessionState) -> None:
        state.warm = value

    try:
        sessions.update(name, change)
    except Exception as exc:
        log.debug("could not record the warm sandbox in session %s: %s", name, exc)


async def warm_container(manager: SandboxManager, spec: LaunchSpec,
                         planned: PlannedContainer) -> ContainerSpec:
    """The container a session's warm sandbox would be: on a remote engine, with volumes."""
    site = await anyio.to_thread.run_sync(manager.site, spec.options.docker or DockerOptions())
    if not site.remote:
        return planned.container
    from ..remote.process import plan_remote

    container, _, slot = plan_remote(spec, planned)
    if slot is not None:
        slot.release()
    return container


async def session_turn(manager: SandboxManager, planned: PlannedContainer,
                       spec: LaunchSpec) -> LiveTurn:
    """Run this turn of `spec.session` in its warm sandbox (made or replaced as needed)."""
    assert spec.session is not None
    session = spec.session
    options = spec.options.docker or DockerOptions()
    engine = await manager.engine()
    site = await anyio.to_thread.run_sync(manager.site, options)
    await housekeeping(engine)
    uid, gid, _ = sandbox_user(options)
    container = planned.container
    places: RemotePlaces | None = None
    if site.remote:
        from ..remote.places import RemotePlaces

        places = await anyio.to_thread.run_sync(functools.partial(
            RemotePlaces.plan, site, spec, planned, uid=uid, gid=gid, labels=manager.labels))
        container = places.container
    key = container_key(container, planned.resolved.image_id)
    busy = Lease(time.time() + spec.options.timeout + IN_USE_MARGIN, owner_label())
    warm = await anyio.to_thread.run_sync(find_for_session, session, spec.workspace)
    if warm is not None:
        if warm.key != key:
            log.info("session %s: options changed; replacing its warm sandbox", session)
            await retire(engine, warm)
            warm = None
        elif not warm.lock():
            log.info("session %s: its warm sandbox is in use; starting another", session)
            warm = None
        elif not await warm.running(engine):
            await warm.remove(engine)
            warm = None
        else:
            await anyio.to_thread.run_sync(warm.lease, busy, engine)
    if places is not None:  # the session's volumes get what changed here since the last turn
        try:
            await places.fill(engine, through=warm)
        except BaseException:
            if warm is not None:
                warm.unlock()
            raise
    if warm is None:
        warm = await WarmSandbox.create(
            engine, container, key, lease=busy, uid=uid, gid=gid, remote=site.remote,
            meta={"session": session, "workspace": str(spec.workspace.resolve()),
                  "keepWarm": options.keep_warm})
        warm.lock()
    warm.hold(engine)  # until the turn ends: should this process die, the container goes
    keep = options.keep_warm

    async def end(outcome: str, result: dict[str, Any] | None) -> None:
        try:
            if places is not None:  # whatever the outcome: the volume must not keep them
                await places.bring_back(engine, through=warm)
        finally:
            await finish_turn(engine, warm, planned, outcome, result, keep=keep,
                              session=session)

    try:
        await anyio.to_thread.run_sync(warm.serve_egress, planned.egress, engine)
        return await turn_in(engine, warm, planned, on_end=end)
    except BaseException:
        with anyio.CancelScope(shield=True):
            await warm.remove(engine)
        raise


async def finish_turn(engine: eng.Engine, warm: WarmSandbox, planned: PlannedContainer,
                      outcome: str, result: dict[str, Any] | None, *, keep: float,
                      session: str | None) -> None:
    """After a turn: keep the sandbox warm for `keep` seconds, or remove it when stuck."""
    log.debug("the turn in the warm sandbox %s ended: %s", warm.short_id, outcome)
    await anyio.to_thread.run_sync(planned.config.finish)
    if outcome == "stuck" or keep <= 0:
        if outcome == "stuck":
            await warm.remove(engine)
        else:
            await retire(engine, warm)
        if session:
            await anyio.to_thread.run_sync(_record_in_session, session, None, 0.0)
        return
    live = warm.meta.get("live")
    if outcome == "dead":
        warm.meta["live"] = None
    elif isinstance(live, dict) and result and result.get("session_id"):
        live["sessionId"] = str(result["session_id"])
    expires = time.time() + keep
    warm.meta.update(lastUsed=time.time(), keepWarm=keep, session=session)

    def save() -> None:
        warm.save()
        warm.lease(Lease(expires), engine)
        warm.let_go()
        warm.unlock()
        if session:
            _record_in_session(session, warm, expires)

    await anyio.to_thread.run_sync(save)


_retiring: dict[str, anyio.Event] = {}


def retire_later(engine: eng.Engine, warm: WarmSandbox, session: str | None,
                 places: RemotePlaces | None = None) -> Coroutine[Any, Any, None]:
    """`retire()` to run off the job's path (then `places` are closed). Registered now, so
    that the session's next turn in this process waits for it (`until_retired`) even if it
    starts first."""
    done = anyio.Event()
    if session:
        _retiring[session] = done

    async def run() -> None:
        try:
            with anyio.CancelScope(shield=True):
                await retire(engine, warm)
                if places is not None:
                    await places.close(engine)
        finally:
            done.set()
            if session and _retiring.get(session) is done:
                del _retiring[session]

    return run()


async def until_retired(session: str, limit: float = 10.0) -> None:
    done = _retiring.get(session)
    if done is not None:
        with anyio.move_on_after(limit):
            await done.wait()


async def retire(engine: eng.Engine, warm: WarmSandbox) -> None:
    """Remove a warm container after stopping its claude with SIGTERM: a live process writes
    its transcript lazily (about a second after a turn, or when terminated), and a later
    `--resume` elsewhere needs the whole conversation."""
    info = warm.meta.get("live")
    if isinstance(info, dict) and info.get("id"):
        await live_of(engine, warm, str(info["id"])).kill(engine)
    await warm.remove(engine)


async def spawn_live(engine: eng.Engine, warm: WarmSandbox, argv: list[str], *, user: str,
                     workdir: str) -> Live:
    """A new live claude in `warm`, running `argv`."""
    if warm.remote:
        from ..remote.live import ContainerLive

        return await ContainerLive.spawn(engine, warm.container_id, argv, user=user,
                                         workdir=workdir)
    uid, gid, _ = sandbox_user(DockerOptions(user=user))
    return await LiveProcess.spawn(engine, warm.dir, warm.container_id, argv, user=user,
                                   workdir=workdir, uid=uid, gid=gid)


def live_of(engine: eng.Engine, warm: WarmSandbox, live_id: str) -> Live:
    """The handle of a live claude of `warm`, by where its directory is."""
    if warm.remote:
        from ..remote.live import ContainerLive

        return ContainerLive(engine, live_id, warm.container_id, str(warm.meta.get("user", "")))
    return LiveProcess(warm.dir, live_id, warm.container_id)


async def turn_in(engine: eng.Engine, warm: WarmSandbox, planned: PlannedContainer, *,
                  on_end: OnEnd) -> LiveTurn:
    """Send the turn to the warm container's live claude, spawning one when it cannot serve."""
    container = planned.container
    argv = split_argv(container.argv)
    info = warm.meta.get("live")
    live: Live | None = None
    if isinstance(info, dict) and info.get("id"):
        live = live_of(engine, warm, str(info["id"]))
        why = ("its flags differ" if info.get("argvKey") != argv.key else
               "it holds another conversation" if info.get("sessionId") != argv.resume else
               "it has ended" if not await anyio.to_thread.run_sync(live.alive) else
               "its last turn did not end" if not await anyio.to_thread.run_sync(live.idle)
               and not await live.interrupt_to_idle() else None)
        if why is not None:
            log.info("the warm sandbox's claude cannot continue this turn (%s); starting "
                     "another", why)
            await live.kill(engine)
            live = None
    if live is None:
        live = await spawn_live(engine, warm, argv.spawn(), user=container.user,
                                workdir=container.workdir)
        warm.meta["live"] = {"id": live.id, "argvKey": argv.key, "sessionId": argv.resume}
        await anyio.to_thread.run_sync(warm.save)
    command_line = f"{warm.meta.get('runLine', '')}\n{exec_line(warm.container_id, argv.spawn())}"
    return await LiveTurn.begin(engine, live, argv.prompt, command_line=command_line,
                                memory_text=container.memory_text, on_end=on_end)

