"""A job's container on a remote engine: fill the volumes, start, bring the changes back.

`start_remote` takes the container a local job would get (`PlannedContainer`), swaps every
bind mount for a volume (`volumes.plan_layout`), sends what the volumes lack, starts the
container and, in `proxy` mode, opens the egress channel. `RemoteProcess.wait()` brings what
the job changed back to this machine before it returns, so the job's own check after it (the
git mirror's reclaim and bring-back, the snapshot's collection of changes) sees the files as a
local job would have left them; so does `terminate()` for a cancelled or timed-out job.
"""

from __future__ import annotations

import dataclasses
import hashlib
import logging
import time
from typing import TYPE_CHECKING, Any, Protocol

import anyio

from ...errors import SandboxError
from ...state import HeldLock, subdir, try_lock
from .. import engine as eng
from ..container.mounts import CONFIG_DIR, Mount
from ..container.process import ContainerProcess
from ..labels import SESSION, WORKSPACE_LABEL
from .channel import MUX_INSIDE, MUX_JS, MUX_SOCKET, PRELUDE, EgressChannel
from .detect import EngineSite
from .tree import Applied
from .volumes import (
    Filled,
    Inside,
    Layout,
    bring_back,
    fill,
    plan_layout,
    reap_volumes,
    remove_job_volumes,
)

if TYPE_CHECKING:
    from ...launch import LaunchSpec
    from ..container.egress_link import EgressLink
    from ..container.process import ContainerSpec
    from ..image.resolve import ResolvedImage


class PlannedContainer(Protocol):
    """What the manager planned for a job (`manager.PlannedContainer`)."""

    container: ContainerSpec
    resolved: ResolvedImage
    egress: EgressLink | None

log = logging.getLogger(__name__)
_reaped: set[str] = set()  # engines whose orphaned job volumes this process has removed


POOL = 4  # kept workspace volumes per workspace, for jobs that are not a session's turn


def _scope(spec: LaunchSpec) -> tuple[str, bool, HeldLock | None]:
    """Whose read-write volumes these are: the named session's (kept between its turns, so a
    follow-up sends only what changed); else one of the workspace's pooled slots, held by this
    job alone while it runs (the next job in that workspace sends only what differs from what
    the last one left); else, every slot busy, the job's own."""
    if spec.session:
        return f"session\0{spec.session}\0{spec.workspace}", True, None
    where = hashlib.sha256(str(spec.workspace.resolve()).encode()).hexdigest()[:16]
    locks = subdir("remote/slots")
    for slot in range(POOL):
        held = try_lock(locks / f"{where}-{slot}.lock")
        if held is not None:
            return f"pool\0{spec.workspace.resolve()}\0{slot}", True, held
    return f"job\0{spec.job_id}", False, None


class RemoteProcess:
    """A `ClaudeProcess` on a remote engine: the container's, plus the way back."""

    def __init__(self, inner: ContainerProcess, engine: eng.Engine, site: EngineSite,
                 layout: Layout, image: str, labels: dict[str, str],
                 channel: EgressChannel | None, filled: Filled,
                 slot: HeldLock | None = None) -> None:
        self.slot = slot
        self.inner = inner
        self.engine = engine
        self.site = site
        self.layout = layout
        self.image = image
        self.labels = labels
        self.channel = channel
        self.filled = filled
        self.applied: list[Applied] = []
        self.command_line = inner.command_line
        self._brought = False
        self._released = False

    @property
    def id(self) -> str:
        return self.inner.id

    async def read(self) -> bytes:
        return await self.inner.read()

    def stderr_tail(self) -> str:
        return self.inner.stderr_tail()

    def failure(self) -> Exception | None:
        return self.inner.failure()

    async def wait(self) -> int:
        code = await self.inner.wait()
        await self._bring_back()
        return code

    async def terminate(self) -> None:
        """Stop the container, then bring back what the job had changed by then: a stopped
        local job leaves its edits in place too, and a kept volume must not hold them for the
        next job to bring back as its own. Never raises."""
        await self.inner.terminate()
        try:
            await self._bring_back()
        except Exception as exc:
            log.warning("could not bring back what the stopped job had changed: %s", exc)

    async def _bring_back(self) -> None:
        if self._brought:
            return
        self._brought = True
        with anyio.CancelScope(shield=True):
            try:
                self.applied = await bring_back_changes(self.engine, self.site, self.layout,
                                                        image=self.image, labels=self.labels)
            finally:
                await self._release()

    async def _release(self) -> None:
        if self._released:
            return
        self._released = True
        if self.channel is not None:
            self.channel.close()
        try:
            await anyio.to_thread.run_sync(remove_job_volumes, self.engine.api, self.layout)
        except Exception as exc:
            log.warning("could not remove the job's volumes: %s", exc)
        finally:
            if self.slot is not None:
                self.slot.release()


def remote_container(planned: PlannedContainer) -> tuple[list[Mount], dict[str, str], str]:
    """The mounts, environment and prelude of the planned container, with the local egress
    forwarder (a socket of this machine) replaced by the channel's end."""
    spec = planned.container
    mounts, env, prelude = list(spec.mounts), dict(spec.env), spec.prelude
    if planned.egress is not None:
        mounts.append(Mount(MUX_JS, MUX_INSIDE, read_only=True))
        env.pop("CHANNELCODER_EGRESS_SOCKET", None)
        env["CHANNELCODER_EGRESS_MUX"] = MUX_SOCKET
        prelude = PRELUDE
    return mounts, env, prelude


def _reap_once(api: Any, site: EngineSite) -> None:
    """Once per engine and process: remove the volumes of jobs whose process is gone."""
    if site.engine_id in _reaped:
        return
    _reaped.add(site.engine_id)
    try:
        gone = reap_volumes(api)
    except Exception as exc:
        log.warning("could not remove orphaned job volumes: %s", exc)
    else:
        if gone:
            log.info("removed %d volume(s) of jobs whose process is gone", len(gone))


def plan_remote(spec: LaunchSpec, planned: PlannedContainer
                ) -> tuple[ContainerSpec, Layout, HeldLock | None]:
    """The planned container as it runs on a remote engine (volumes for its mounts, the
    egress channel's end for the forwarder), its volumes, and the pooled slot it holds."""
    mounts, env, prelude = remote_container(planned)
    scope, keep, slot = _scope(spec)
    try:
        layout = plan_layout(mounts, scope=scope, keep=keep, config_target=CONFIG_DIR,
                             config_keep=bool(spec.session))
    except BaseException:
        if slot is not None:
            slot.release()
        raise
    for volume in layout.volumes:  # a workspace's copies: `channelcoder volumes rm -C` finds them
        if not volume.read_only:
            volume.labels = {WORKSPACE_LABEL: str(spec.workspace.resolve())}
            if spec.session:
                volume.labels[SESSION] = spec.session
    container = dataclasses.replace(planned.container, mounts=layout.mounts, env=env,
                                    prelude=prelude)
    return container, layout, slot


async def fill_volumes(engine: eng.Engine, site: EngineSite, layout: Layout, *, image: str,
                       uid: int | None, gid: int | None, labels: dict[str, str],
                       inside: Inside | None = None) -> Filled:
    """Send the volumes what they lack (`volumes.fill`), reaping orphans first."""
    await anyio.to_thread.run_sync(_reap_once, engine.api, site)
    began = time.monotonic()
    filled = await eng.call("copying the workspace to the engine", fill, engine.api,
                            site.engine_id, layout, image=image, uid=uid, gid=gid,
                            labels=labels, inside=inside, abandon=False)
    log.info("copied %d file(s), %d bytes to %s in %.2f s", filled.sent_files,
             filled.sent_bytes, site.host, time.monotonic() - began)
    return filled


async def bring_back_changes(engine: eng.Engine, site: EngineSite, layout: Layout, *,
                             image: str, labels: dict[str, str],
                             inside: Inside | None = None) -> list[Applied]:
    """What the job changed in the read-write volumes, applied here (`volumes.bring_back`)."""
    applied: list[Applied] = await eng.call("bringing the changes back", bring_back,
                                            engine.api, site.engine_id, layout, image=image,
                                            labels=labels, inside=inside, abandon=False)
    for one in applied:
        if one.kept_local:
            log.warning("changed here and by the job; yours kept: %s",
                        ", ".join(one.kept_local[:10]))
    return applied


async def start_remote(engine: eng.Engine, site: EngineSite, spec: LaunchSpec,
                       planned: PlannedContainer, *, uid: int | None, gid: int | None,
                       labels: dict[str, str], on_exit: Any) -> RemoteProcess:
    """Copy the job's places in, start its container, open its egress channel."""
    container, layout, slot = plan_remote(spec, planned)
    image = planned.resolved.ref
    try:
        filled = await fill_volumes(engine, site, layout, image=image, uid=uid, gid=gid,
                                    labels=labels)
        process = await ContainerProcess.start(engine, container, on_exit=on_exit)
    except BaseException:
        with anyio.CancelScope(shield=True):
            await anyio.to_thread.run_sync(remove_job_volumes, engine.api, layout)
        if slot is not None:
            slot.release()
        raise
    remote = RemoteProcess(process, engine, site, layout, image, labels, None, filled, slot)
    if planned.egress is not None:
        from ..container.egress_link import SOCKET_NAME

        remote.channel = EgressChannel(engine.stream_api, process.id,
                                       planned.egress.directory / SOCKET_NAME)
        try:
            await anyio.to_thread.run_sync(remote.channel.open)
        except Exception as exc:
            await remote.terminate()
            raise SandboxError(f"could not open the egress channel into the sandbox: {exc}",
                               hint="the image needs node (every image with claude has it)"
                               ) from exc
    return remote
