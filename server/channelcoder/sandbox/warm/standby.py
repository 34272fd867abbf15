"""A standby sandbox: a container with an idle live claude, ready before the first job. The
language server keeps one per workspace (`lsp/standby_provider.py`).

What the CLI reads at spawn, verified with 2.1.197 (docs/warm-and-standby.md): the git state
(repository or not, branch, `git status`, recent commits) goes into the system prompt and
CLAUDE.md into the first user message, both captured while the process starts — not at its
first message. So a standby is spawned on a *speculative snapshot* of the workspace: its job
directory (mounted at /workspace) is that snapshot's tree. A job that takes the standby refreshes
that same snapshot with its own state (its unsaved buffers included; only what changed is
written), and the standby's claude serves it only when everything it captured is unchanged — the
`fingerprint()` of the job directory equals the one taken before the spawn. Otherwise the job
starts cold on the refreshed snapshot and the standby is dropped. A new standby is prepared
after every job that took one.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import functools
import hashlib
import logging
import os
import secrets
import shutil
import time
from collections.abc import AsyncGenerator, Callable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import anyio

from ...backend import Backend, ClaudeProcess
from ...claude.events import Status
from ...config import DockerOptions, RunOptions
from ...errors import DockerUnavailable
from ...launch import LaunchSpec, PreparedLaunch, build_launch
from ...owner import owner_label
from ...workspace.gitcmd import run_git
from .. import engine as eng
from ..container.claude_config import USER_FILES, config_dir_for, host_claude_dir
from ..labels import STANDBY
from ..manager import PlannedContainer, PreparedSandbox, SandboxManager, sandbox_user
from .lease import Lease
from .live import Live, LiveArgv, LiveTurn, LiveUnavailable, exec_line, split_argv
from .sandbox import IN_USE_MARGIN, WarmSandbox, container_key, housekeeping
from .session_backend import spawn_live

if TYPE_CHECKING:
    from ..remote.places import RemotePlaces

log = logging.getLogger(__name__)

# An idle standby's lease, renewed by its server every HEARTBEAT. A server killed outright
# (SIGKILL) loses the standby's lifeline, which ends it within seconds; should the lifeline have
# failed to start, its watchdog still ends it within STANDBY_LEASE.
STANDBY_LEASE = 120.0
HEARTBEAT = 40.0
REPLENISH_DELAY = 0.5
RETRY_DELAY = 3.0  # no standby when a job starts: try again once that job has got going
ENGINE_RETRY = (5.0, 60.0)  # no engine: try again after 5 s, doubling up to a minute
CONTEXT_FILES = ("CLAUDE.md", "CLAUDE.local.md", ".mcp.json")
PER_TURN = ("session", "resume", "continue_", "timeout", "idle_timeout", "max_jobs", "verbose")
OptionsFor = Callable[[Path], "RunOptions | None"]


# ---------------------------------------------------------------------------------------------
# What claude captures at spawn


def fingerprint(cwd: Path, ceiling: Path) -> str:
    """A digest of everything the CLI reads at spawn from its job directory and config dir.

    Git: HEAD, branch and status (the system prompt's gitStatus), or "not a repository" — git
    looks no higher than below `ceiling` (the snapshot's root: a repository around the state
    dir is not the job's). Files: CLAUDE.md, CLAUDE.local.md, .mcp.json and everything under
    .claude/. The user's CLAUDE.md, commands/ and agents/ (copied into the sandbox's config
    dir). Today's date. Blocking (one git command).
    """
    digest = hashlib.sha256()
    done = run_git(["status", "--porcelain=v2", "--branch", "--untracked-files=all"], cwd=cwd,
                   check=False, env={"GIT_OPTIONAL_LOCKS": "0", "LC_ALL": "C",
                                     "GIT_CEILING_DIRECTORIES": str(ceiling)})
    digest.update(done.stdout if done.returncode == 0 else b"not a repository")
    for name in CONTEXT_FILES:
        _hash_path(digest, cwd / name, name)
    _hash_path(digest, cwd / ".claude", ".claude")
    host = host_claude_dir()
    for name in USER_FILES:
        _hash_path(digest, host / name, f"~/{name}")
    digest.update(time.strftime("%Y-%m-%d").encode())
    return digest.hexdigest()


def _hash_path(digest: Any, path: Path, label: str) -> None:
    digest.update(f"\0{label}\0".encode())
    if path.is_file():
        with contextlib.suppress(OSError):
            digest.update(path.read_bytes())
    elif path.is_dir():
        for root, dirs, files in os.walk(path):
            dirs.sort()
            for name in sorted(files):
                full = Path(root) / name
                digest.update(str(full.relative_to(path)).encode())
                with contextlib.suppress(OSError):
                    digest.update(full.read_bytes())


def options_key(options: RunOptions) -> str:
    """The options a standby was spawned with, minus what belongs to one turn."""
    plain = {f.name: getattr(options, f.name) for f in dataclasses.fields(options)
             if f.name not in PER_TURN}
    return hashlib.sha256(repr(sorted(plain.items(), key=lambda kv: kv[0])).encode()
                          ).hexdigest()[:24]


def eligible(options: RunOptions | None) -> bool:
    return (options is not None and options.docker is not None and options.apply == "propose"
            and options.worktree is None and options.docker.keep_warm >= 0)


# ---------------------------------------------------------------------------------------------
# One standby


@dataclass(frozen=True)
class Match:
    planned: PlannedContainer
    argv: LiveArgv


@dataclass
class Standby:
    id: str
    workspace: Path
    options: RunOptions
    key: str
    snapshot: Any  # workspace.snapshot.Snapshot, held in use while the standby lives
    warm: WarmSandbox
    live: Live
    planned: PlannedContainer
    container_key: str
    argv: LiveArgv
    fingerprint: str
    created: float = dataclasses.field(default_factory=time.time)
    places: RemotePlaces | None = None  # on a remote engine: the volumes it mounts


class StandbyPool:
    """At most one ready standby for one workspace; `take()` hands it over to a matching job,
    whose `StandbyBackend` owns it from then on (it gives it back if it did not use it)."""

    def __init__(self, manager: SandboxManager | None = None) -> None:
        self._manager = manager
        self.standby: Standby | None = None
        self._workspace: Path | None = None
        self._options_for: OptionsFor | None = None
        self._task: asyncio.Task[None] | None = None
        self._beat: asyncio.Task[None] | None = None
        self._pending: set[asyncio.Task[Any]] = set()
        self._closed = False
        self._asked = False  # a job found no standby while an attempt was under way
        self._sleeping: asyncio.Task[Any] | None = None  # a task still waiting out its delay
        self._engine_wait = 0.0  # the back-off while the engine is unreachable
        self._why_none = ""  # why there is no standby: the last attempt's failure, or a reason

    @property
    def manager(self) -> SandboxManager:
        return self._manager or SandboxManager.shared()

    # -- control (called on the server's loop; each returns at once) --------------------------

    def start(self, workspace: Path, options_for: OptionsFor) -> None:
        """(Re)prepare a standby for this workspace's default options, in the background."""
        if self._closed:
            return
        self._workspace, self._options_for = workspace, options_for
        self._schedule()

    def stop(self) -> None:
        """No standby any more (the `standby` setting went off)."""
        self._options_for = None
        self._cancel_task()
        self._background(self._drop(self.standby))

    def take(self, request: Any, *, cold: Backend,
             saved_session: bool) -> StandbyBackend | None:
        """The standby for `request` when it matches; `cold`: the job's backend without it;
        `saved_session`: the job is a turn of a saved named session (kept warm after it)."""
        standby = self.standby
        if standby is None:
            if self._attempting():
                self._asked = True  # should the attempt under way fail, it tries again
            else:
                self.replenish(RETRY_DELAY)  # e.g. the engine was down when the last one failed
        if standby is None or not self._matches(standby, request):
            return None
        self.standby = None
        return StandbyBackend(self, standby, cold, keep_warm=saved_session)

    def give_back(self, standby: Standby) -> None:
        """A standby a job took but did not use: ready again, unless another took its place."""
        if self.standby is None and not self._closed and self._options_for is not None:
            self.standby = standby
        else:
            self._background(self._drop(standby))

    async def aclose(self) -> None:
        self._closed = True
        self._options_for = None
        self._cancel_task()
        if self._beat is not None:
            self._beat.cancel()
        if self._task is not None:
            with contextlib.suppress(BaseException):
                await asyncio.wait_for(asyncio.shield(self._task), 10)
        await self._drop(self.standby)
        if self._pending:
            await asyncio.wait(list(self._pending), timeout=10)

    def describe(self) -> dict[str, Any]:
        """What is there right now, for a user asking (`doctor`): `state` is `ready` (with the
        container, image, workspace and age in seconds), `preparing`, `none` (with `reason`) or
        `off` (not asked for, or closed)."""
        standby = self.standby
        if standby is not None:
            return {"state": "ready", "container": standby.warm.short_id,
                    "image": standby.planned.resolved.ref, "workspace": str(standby.workspace),
                    "ageSeconds": round(time.time() - standby.created, 1)}
        if self._closed or self._options_for is None:
            return {"state": "off"}
        if self._task is not None and not self._task.done():
            return {"state": "preparing", "workspace": str(self._workspace)}
        return {"state": "none", "workspace": str(self._workspace),
                "reason": self._why_none or "none was made yet"}

    # -- internals ---------------------------------------------------------------------------

    @staticmethod
    def _matches(standby: Standby, request: Any) -> bool:
        options: RunOptions = request.options
        try:
            workspace = Path(request.workspace).resolve()
        except OSError:
            return False
        return (workspace == standby.workspace and not request.env and not options.resume
                and not options.continue_ and eligible(options)
                and options_key(options) == standby.key)

    async def _heartbeat(self) -> None:
        while not self._closed:
            await asyncio.sleep(HEARTBEAT)
            standby = self.standby
            if standby is not None:
                await anyio.to_thread.run_sync(standby.warm.lease, Lease(
                    time.time() + STANDBY_LEASE, owner_label()), await self._engine_or_none())

    def _schedule(self, delay: float = 0.0) -> None:
        if self._beat is None:
            self._beat = asyncio.get_running_loop().create_task(self._heartbeat())
        self._cancel_task()
        self._task = asyncio.get_running_loop().create_task(self._prepare(delay),
                                                            name="channelcoder-standby")

    def _cancel_task(self) -> None:
        if self._task is not None and not self._task.done():
            self._task.cancel()

    def _background(self, coroutine: Any) -> None:
        """Clean-up that `aclose()` waits for (a removed container must be gone at exit)."""
        task = asyncio.get_running_loop().create_task(coroutine)
        self._pending.add(task)
        task.add_done_callback(self._pending.discard)

    def replenish(self, delay: float = 0.0) -> None:
        """After a job: the next standby, once the job's reply and proposal have gone out (its
        start-up takes a core for half a second). An attempt under way is left to finish."""
        if self._attempting():
            return
        if not self._closed and self._options_for is not None and self._workspace is not None:
            with contextlib.suppress(RuntimeError):
                self._schedule(delay=delay or REPLENISH_DELAY)

    def _attempting(self) -> bool:
        """Is a standby being made (not just waiting for its turn)?"""
        task = self._task
        return task is not None and not task.done() and task is not self._sleeping

    async def _prepare(self, delay: float = 0.0) -> None:
        if delay:
            self._sleeping = asyncio.current_task()
            try:
                await asyncio.sleep(delay)
            finally:
                if self._sleeping is asyncio.current_task():
                    self._sleeping = None
        workspace, options_for = self._workspace, self._options_for
        if workspace is None or options_for is None:
            return
        try:
            options = await anyio.to_thread.run_sync(options_for, workspace)
        except Exception as exc:
            log.info("no standby: the workspace's options are not usable (%s)", exc)
            self._why_none = f"the workspace's options are not usable ({exc})"
            return
        current = self.standby
        if current is not None:
            same = options is not None and eligible(options) and \
                current.key == options_key(options)
            if same and await anyio.to_thread.run_sync(current.live.alive):
                return
            await self._drop(current)
        if not eligible(options):
            self._why_none = ("jobs here do not start the way a standby serves (it serves "
                              "sandboxed jobs in propose mode without a worktree)")
            return
        assert options is not None
        self._asked = False
        try:
            standby = await self._make(workspace, options)
        except asyncio.CancelledError:
            raise
        except Exception as exc:
            retry = RETRY_DELAY if self._asked else None  # a job came while this one failed
            if isinstance(exc, DockerUnavailable):  # the first job says so, with its hint
                first, most = ENGINE_RETRY
                self._engine_wait = min(most, self._engine_wait * 2 or first)
                retry = min(retry or most, self._engine_wait)
                log.info("no standby sandbox: %s (trying again in %g s)", exc, retry)
            else:
                log.warning("could not prepare a standby sandbox: %s", exc)
            self._why_none = str(exc)
            if retry is not None:
                self._task = None  # this task is ending: not one to cancel
                self.replenish(retry)
            return
        self._engine_wait = 0.0
        if self.standby is not None:  # a given-back one came first: keep one
            await self._drop(self.standby)
        self.standby = standby
        log.info("standby sandbox %s ready for %s", standby.warm.short_id, workspace)

    async def _make(self, workspace: Path, options: RunOptions) -> Standby:
        from ...workspace.snapshot import create_snapshot

        await self.manager.engine()  # no engine: fail before any work on the disk
        site = await anyio.to_thread.run_sync(self.manager.site, options.docker or DockerOptions())
        standby_id = f"standby-{secrets.token_hex(5)}"
        snapshot = await anyio.to_thread.run_sync(create_snapshot, workspace, {})
        warm: WarmSandbox | None = None
        places: RemotePlaces | None = None
        engine: eng.Engine | None = None
        try:
            marks = await anyio.to_thread.run_sync(fingerprint, snapshot.cwd, snapshot.root)
            spec = build_launch(options, "standby", workspace=workspace, cwd=snapshot.cwd,
                                job_id=standby_id, mounts=snapshot.mounts)
            prepared: PreparedSandbox | None = None
            async for item in self.manager.prepare_sandbox(spec):
                if isinstance(item, PreparedSandbox):
                    prepared = item
            assert prepared is not None
            planned = await self.manager.plan(prepared)
            engine = await self.manager.engine()
            await housekeeping(engine)
            # Its host paths (snapshot, config dir) are the job's too: they make the key.
            key = container_key(planned.container, planned.resolved.image_id)
            uid, gid, _ = sandbox_user(options.docker or DockerOptions())
            container = planned.container
            if site.remote:  # its snapshot goes into the workspace's pooled volumes there
                from ..remote.places import RemotePlaces

                places = await anyio.to_thread.run_sync(functools.partial(
                    RemotePlaces.plan, site, spec, planned, uid=uid, gid=gid,
                    labels=self.manager.labels))
                container = places.container
                await places.fill(engine, through=None)
            labelled = dataclasses.replace(container, labels={**container.labels, STANDBY: "1"})
            warm = await WarmSandbox.create(
                engine, labelled, key, uid=uid, gid=gid, remote=site.remote,
                lease=Lease(time.time() + STANDBY_LEASE, owner_label()),
                meta={"standby": standby_id, "workspace": str(workspace), "session": None})
            warm.hold(engine)  # the server's for as long as it lives, even if it is killed
            await anyio.to_thread.run_sync(warm.serve_egress, planned.egress, engine)
            live_argv = split_argv(planned.container.argv)
            live = await spawn_live(engine, warm, live_argv.spawn(), user=container.user,
                                    workdir=container.workdir)
            if not await live.warm_up():
                raise LiveUnavailable(f"claude did not start in the standby sandbox: "
                                      f"{live.stderr_tail() or 'no output'}")
            warm.meta.update(live={"id": live.id, "argvKey": live_argv.key, "sessionId": None},
                             ready=True)
            await anyio.to_thread.run_sync(warm.save)
        except BaseException:
            with anyio.CancelScope(shield=True):
                if warm is not None:
                    await warm.remove(await self._engine_or_none())
                if places is not None and engine is not None:
                    await places.close(engine)
                await anyio.to_thread.run_sync(_discard, snapshot)
            raise
        return Standby(standby_id, workspace, options, options_key(options), snapshot, warm, live,
                       planned, key, live_argv, marks, places=places)

    async def _engine_or_none(self) -> eng.Engine | None:
        try:
            return await self.manager.engine()
        except Exception:
            return None

    async def _drop(self, standby: Standby | None, *, keep_snapshot: bool = False) -> None:
        """Remove a standby's container (and, unless a job now uses it, its snapshot)."""
        if standby is None:
            return
        if self.standby is standby:
            self.standby = None
        with anyio.CancelScope(shield=True):
            engine = await self._engine_or_none()
            await standby.warm.remove(engine)
            if standby.places is not None and engine is not None:
                await standby.places.close(engine)
            if keep_snapshot:
                standby.snapshot.release()
            else:
                await anyio.to_thread.run_sync(_discard, standby.snapshot)

    # -- a job takes it ----------------------------------------------------------------------

    async def check(self, standby: Standby, prepared: PreparedSandbox) -> Match | str:
        """Can the standby serve this job (its workplace ready)? The plan, or why not."""
        spec = prepared.spec
        planned = await self.manager.plan(dataclasses.replace(
            prepared, spec=dataclasses.replace(spec, config_dir=standby.planned.config.path)))
        argv = split_argv(planned.container.argv)
        key = container_key(planned.container, planned.resolved.image_id)
        why = None
        if key != standby.container_key or argv.key != standby.argv.key:
            why = "the job's options differ"
        elif argv.resume:
            why = "the job resumes a conversation"
        elif spec.cwd.resolve() != standby.snapshot.cwd.resolve():
            why = "the job runs elsewhere"
        elif await anyio.to_thread.run_sync(fingerprint, spec.cwd,
                                            standby.snapshot.root) != standby.fingerprint:
            why = "the workspace changed since it was spawned (git state, CLAUDE.md, settings)"
        elif not await anyio.to_thread.run_sync(standby.live.alive) or \
                not await anyio.to_thread.run_sync(standby.live.idle):
            why = "its claude is gone"
        if why is None and spec.session:
            why = await anyio.to_thread.run_sync(_adopt_config, standby, spec, planned)
            if why is None and standby.places is not None:
                standby.places.config_comes_back_to(planned.config.path)
        if why is not None:
            log.info("standby %s not used: %s", standby.warm.short_id, why)
            return why
        return Match(planned, argv)

    async def serve(self, standby: Standby, spec: LaunchSpec, match: Match, *,
                    saved_session: bool) -> LiveTurn:
        """Send the job's turn to the standby's idle claude (after `check`); a saved
        session's sandbox stays warm after it."""
        planned, argv = match.planned, match.argv
        engine = await self.manager.engine()
        warm = standby.warm
        places = standby.places
        options = spec.options.docker or DockerOptions()
        # A session's warm sandbox on a remote engine mounts the session's own volumes, not
        # the pooled ones this one holds: it is not kept for the session there.
        keep = options.keep_warm if saved_session and spec.session and places is None else 0.0
        warm.meta.update(standby=None, session=spec.session if keep else None,
                         workspace=str(spec.workspace.resolve()))
        warm.lock()
        await anyio.to_thread.run_sync(warm.lease, Lease(
            time.time() + spec.options.timeout + IN_USE_MARGIN, owner_label()), engine)
        session = spec.session if keep else None
        if places is not None:  # the job's own state of the snapshot (its unsaved buffers)
            await places.fill(engine, through=warm)

        async def end(outcome: str, result: dict[str, Any] | None) -> None:
            from .session_backend import finish_turn, retire_later

            try:
                if places is not None:  # into the snapshot, before its changes are collected
                    await places.bring_back(engine, through=warm)
            finally:
                if keep > 0 or outcome == "stuck":
                    await finish_turn(engine, warm, planned, outcome, result, keep=keep,
                                      session=session)
                    if places is not None:
                        await places.close(engine)
                else:  # not kept: removed after the job, not on its way to the result
                    await anyio.to_thread.run_sync(planned.config.finish)
                    self._background(retire_later(engine, warm, spec.session, places))

        await anyio.to_thread.run_sync(warm.serve_egress, planned.egress, engine)
        standby.snapshot.release()  # the job holds the snapshot now
        command_line = f"{warm.meta.get('runLine', '')}\n{exec_line(warm.container_id, argv.spawn())}"
        return await LiveTurn.begin(engine, standby.live, argv.prompt, command_line=command_line,
                                    memory_text=planned.container.memory_text, on_end=end)


def _discard(snapshot: Any) -> None:
    snapshot.release()
    snapshot.discard()


def _adopt_config(standby: Standby, spec: LaunchSpec, planned: PlannedContainer) -> str | None:
    """Give the standby's config dir (the transcript) to the job's session, so a later cold
    `--resume` of the session finds it. The container's bind mount follows the renamed dir."""
    target = config_dir_for(session=spec.session, workspace=spec.workspace, job_id=spec.job_id,
                            resume=None)
    if target.exists() and any(target.glob("projects/*/*.jsonl")):
        return "the session already has a conversation"
    source = standby.planned.config.path
    try:
        if target.exists():
            shutil.rmtree(target)
        target.parent.mkdir(parents=True, exist_ok=True)
        source.rename(target)
    except OSError as exc:
        return f"its config dir could not be given to the session ({exc})"
    planned.config.path = target
    standby.planned.config.path = target
    return None


class StandbyBackend:
    """The `Backend` of a job that took the standby (`StandbyPool.take`). It owns the standby
    until it serves the job with it, drops it, or gives it back unused."""

    def __init__(self, pool: StandbyPool, standby: Standby, cold: Backend, *,
                 keep_warm: bool) -> None:
        self.pool = pool
        self.standby = standby
        self.cold = cold
        self.keep_warm = keep_warm
        self._match: Match | str | None = None
        self._owned = True
        self._released = False

    @property
    def snapshot_id(self) -> str | None:
        return str(self.standby.snapshot.id)

    async def prepare(self, spec: LaunchSpec) -> AsyncGenerator[Status | PreparedLaunch, None]:
        starting: Status | None = None
        async for item in self.pool.manager.prepare_sandbox(spec):
            if isinstance(item, Status) and item.phase == "starting-sandbox":
                starting = item
                continue
            if isinstance(item, PreparedSandbox):
                try:
                    self._match = await self.pool.check(self.standby, item)
                except (LiveUnavailable, OSError) as exc:
                    self._match = str(exc)
                if isinstance(self._match, Match):
                    starting = Status("starting-sandbox",
                                      f"using the standby sandbox {self.standby.warm.short_id}")
                elif spec.cwd.resolve() == self.standby.snapshot.cwd.resolve():
                    self._owned = False
                    await self.pool._drop(self.standby, keep_snapshot=True)  # the job has it
                else:
                    self._give_back()  # e.g. a session's next turn, on its own snapshot
                if starting is not None:
                    yield starting
            yield item

    async def start(self, prepared: PreparedLaunch) -> ClaudeProcess:
        spec = prepared.spec
        if isinstance(self._match, Match):
            self._owned = False
            try:
                return await self.pool.serve(self.standby, spec, self._match,
                                             saved_session=self.keep_warm)
            except (LiveUnavailable, OSError) as exc:
                log.warning("the standby sandbox failed (%s); starting cold", exc)
                await self.pool._drop(self.standby, keep_snapshot=True)
        return await self.cold.start(prepared)

    def _give_back(self) -> None:
        if self._owned:
            self._owned = False
            self.pool.give_back(self.standby)

    def release(self) -> None:
        """The job is over (or never started): give an unused standby back, or prepare the next."""
        if self._released:
            return
        self._released = True
        self._give_back()
        if self.pool.standby is None:
            self.pool.replenish()
