"""A CLI run's head start: its container created and started before the event loop exists.

Before `channelcoder run --docker` can ask the engine for a container it spends most of its
own time importing (asyncio, anyio, the job machinery) — and the engine then needs ~80 ms to
start the container. `HeadStart.begin()` plans and launches the container first, with blocking
calls on the stdlib engine client, and sends `start` from a thread: the rest of the start-up
overlaps the engine's work. The job then runs with the head start as its backend; `start()`
hands over the running container when the job asks for exactly the launch that was planned,
and otherwise removes it and starts the job's own. Only the plain case gets a head start (the
workspace itself, no session, an image ready with nothing to build, probe or report); for
anything else `begin()` returns None and the run goes the usual way.
"""

from __future__ import annotations

import contextlib
import dataclasses
import logging
import os
import threading
from collections.abc import AsyncGenerator
from typing import TYPE_CHECKING, Any

import anyio

from ...backend import ClaudeProcess
from ...claude.events import Status
from ...launch import LaunchSpec, PreparedLaunch, build_launch
from ..container.process import ContainerProcess, force_remove, launch_blocking
from ..engine import Engine
from ..manager import (
    RESOLVING,
    PlannedContainer,
    PreparedSandbox,
    SandboxManager,
    network_status,
    starting,
)

if TYPE_CHECKING:
    from ...request import Request
    from ...workspace.mirror import Mirror

log = logging.getLogger(__name__)


class HeadStart:
    """One launched container waiting for its job (a `Backend` for that one job)."""

    def __init__(self, request: Request, manager: SandboxManager, engine: Engine,
                 spec: LaunchSpec, planned: PlannedContainer,
                 launched: tuple[str, Any, Any], mirror_key: str = "",
                 mirror: Mirror | None = None) -> None:
        self.request = request
        self.mirror_key = mirror_key  # the job's git mirror, filled while the container is made
        self.mirror = mirror
        self.manager = manager
        self.engine = engine
        self.spec = spec
        self.planned = planned
        self.container_id, self._stream, self._events = launched
        self._start_error: BaseException | None = None
        self._starting = threading.Thread(target=self._start, name="channelcoder-head-start",
                                          daemon=True)
        self._starting.start()
        self._taken = False
        self._released = False

    @classmethod
    def begin(cls, request: Request) -> HeadStart | None:
        """Launch the container `request` will run in, when that needs no decision or notice.
        Blocking; never raises for the run's own problems (the usual way reports those)."""
        options = request.options
        docker = options.docker
        if (docker is None or options.apply != "direct" or options.worktree is not None
                or options.session or options.resume or request.buffers):
            return None
        request = dataclasses.replace(request, job_id=request.job_id or os.urandom(6).hex())
        manager = SandboxManager.shared()
        from ...workspace.mirror import drop_ahead, fill_ahead, mirror_key

        workspace = request.workspace.resolve()
        key = mirror_key(request.job_id or "", None, workspace)
        try:
            if not workspace.is_dir():
                return None
            assert request.job_id is not None
            mirror = fill_ahead(workspace, key)
            spec = build_launch(options, request.prompt, workspace=request.workspace,
                                cwd=workspace, job_id=request.job_id, env=request.env,
                                mounts=mirror.mounts() if mirror is not None else ())
            manager.check_spec(spec)
            engine = manager.engine_blocking()
            if manager.site(docker).remote:  # its files are copied in when the job starts
                drop_ahead(key)
                return None
            from ...trust import is_trusted

            resolved = manager.resolver(engine, docker).ready_blocking(
                docker, spec.workspace, trusted=is_trusted(spec.workspace))
            if resolved is None:
                drop_ahead(key)
                return None
            planned = manager.assemble(spec, resolved)
            if planned.egress is not None:
                planned.egress.own_directory()  # served as the container starts
        except Exception as exc:
            drop_ahead(key)
            log.debug("no head start: %s", exc)
            return None
        made: list[str] = []
        try:
            launched = launch_blocking(engine, planned.container, made=made, start=False)
        except BaseException as exc:
            if made:
                with contextlib.suppress(Exception):
                    force_remove(engine.api, made[0])
            planned.config.finish()
            drop_ahead(key)
            if not isinstance(exc, Exception):
                raise
            log.debug("no head start: %s", exc)
            return None
        return cls(request, manager, engine, spec, planned, launched, key, mirror)

    def _start(self) -> None:
        try:
            if self.mirror is not None:
                self.mirror.wait_filled()  # claude reads the repository as it starts
            self.engine.api.start(self.container_id)
            if self.planned.egress is not None:  # long before claude's first request; the
                self.planned.egress.serve()      # forwarder waits for it should it not be
        except BaseException as exc:
            self._start_error = exc

    # -- Backend ---------------------------------------------------------------------------

    snapshot_id: str | None = None

    async def prepare(self, spec: LaunchSpec) -> AsyncGenerator[Status | PreparedLaunch, None]:
        yield RESOLVING
        shown = await network_status(spec)
        if shown is not None:
            yield shown
        yield starting(self.planned.resolved)
        yield PreparedSandbox(spec, self.planned.resolved)

    async def start(self, prepared: PreparedLaunch) -> ClaudeProcess:
        spec = prepared.spec
        self._taken = True
        await anyio.to_thread.run_sync(self._starting.join)
        if spec != self.spec or self._start_error is not None:
            if self._start_error is not None:
                log.debug("the head start failed: %r", self._start_error)
            await anyio.to_thread.run_sync(self._discard)
            return await self.manager.start(prepared)
        process = ContainerProcess(self.engine, self.planned.container, self.container_id,
                                   self._stream, self._events,
                                   on_exit=self.manager.on_exit(spec.job_id, self.planned))
        if self.planned.egress is not None:  # the job reports and asks, now that it exists
            self.planned.egress.attach(spec.on_blocked, spec.ask_network)
        self.manager.adopt(spec.job_id, process)
        return process

    def release(self) -> None:
        """Remove the container if no job took it (blocking, idempotent)."""
        if not self._taken:
            self._discard()

    def _discard(self) -> None:
        if self._released:
            return
        self._released = True
        from ...workspace.mirror import drop_ahead

        drop_ahead(self.mirror_key)
        for stream in (self._stream, self._events):
            with contextlib.suppress(Exception):
                stream.close()
        with contextlib.suppress(Exception):
            force_remove(self.engine.api, self.container_id)
        self.planned.config.finish()
        if self.planned.egress is not None:
            self.planned.egress.close()
