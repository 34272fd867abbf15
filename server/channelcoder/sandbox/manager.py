"""SandboxManager: the single entry point jobs.py uses to run claude inside Docker.

It implements the runner's `Backend` protocol. `prepare(spec)` checks the Docker options,
connects (reaping orphans of dead processes once), resolves or builds the image and reports
each step as a `Status`; `start(spec)` assembles the hardened container (user mapping, mounts,
per-session Claude config dir, environment) and returns a `ContainerProcess`. One manager per
process (`shared()`) owns the engine connection and every container it starts.
"""

from __future__ import annotations

import atexit
import contextlib
import logging
import os
import posixpath
import threading
from collections.abc import AsyncGenerator, AsyncIterator, Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import anyio

from ..backend import ClaudeProcess
from ..claude.argv import QUIET_ENV
from ..claude.events import Status
from ..config import DockerOptions
from ..errors import ConfigError
from ..launch import LaunchSpec, PreparedLaunch
from ..owner import owner_label
from ..redact import register_env
from . import engine as eng
from .container.claude_config import (
    TOKEN_ENV,
    ConfigDir,
    config_dir_for,
    prepare_config_dir,
    prune_job_dirs,
)
from .container.hostpaths import sandbox_argv
from .container.mounts import CA_FILE, CONFIG_DIR, HOME, WORKSPACE, Mount, check_env, parse_mounts
from .container.process import ContainerProcess, ContainerSpec
from .engine.proxies import PROXY_VARS, proxy_env
from .image.cachekey import StatMemo
from .image.resolve import ImageResolver, ResolvedImage, ca_bundle_path
from .labels import JOB, MANAGED, OWNER, SESSION, WORKSPACE_LABEL
from .reaping import reap_orphans, remove_owned

if TYPE_CHECKING:
    from .container.egress_link import EgressLink
    from .remote.detect import EngineSite

log = logging.getLogger(__name__)
# A network mode as the engine names it; `proxy` has no network but the egress proxy's socket.
ENGINE_NETWORK = {"proxy": "none", "open": "bridge", "none": "none", "host": "host"}

PASS_ENV = (*TOKEN_ENV, "ANTHROPIC_BASE_URL", "CLAUDE_CODE_MAX_RETRIES", "API_TIMEOUT_MS")
LABELS_ENV = "CHANNELCODER_DOCKER_LABELS"
TMP_OPTIONS = "rw,exec,nosuid,nodev,size=1g,mode=1777"


def labels_from_env() -> dict[str, str]:
    """Extra labels for everything the manager makes: CHANNELCODER_DOCKER_LABELS=k=v,k=v."""
    out: dict[str, str] = {}
    for item in os.environ.get(LABELS_ENV, "").split(","):
        name, sep, value = item.strip().partition("=")
        if sep and name:
            out[name] = value
    return out


def sandbox_user(options: DockerOptions) -> tuple[int | None, int | None, str]:
    """(uid, gid, docker --user) for the `user` option; `auto` = the host user."""
    if options.user == "auto":
        return os.getuid(), os.getgid(), f"{os.getuid()}:{os.getgid()}"
    text = options.user.strip()
    uid_text, _, gid_text = text.partition(":")
    if not uid_text or any(c.isspace() for c in text):
        raise ConfigError(f"docker.user {options.user!r} is not UID[:GID] or a user name",
                          hint="e.g. user = \"1000:1000\", or \"auto\" for your own uid")
    uid = int(uid_text) if uid_text.isdigit() else (0 if uid_text == "root" else None)
    gid = int(gid_text) if gid_text.isdigit() else (uid if not gid_text else None)
    return uid, gid, text


RESOLVING = Status("resolving-image", "resolving the sandbox image")


async def network_status(spec: LaunchSpec) -> Status | None:
    """`--verbose` in `proxy` mode: what the egress proxy lets through (never a credential)."""
    options = spec.options.docker or DockerOptions()
    if options.network != "proxy" or not spec.options.verbose:
        return None
    from .container.egress_link import allowlist, host_proxy

    hosts = await anyio.to_thread.run_sync(allowlist, options, spec.workspace)
    through = host_proxy({**os.environ, **spec.env})
    return Status("starting-sandbox", f"network: egress proxy; allowed: {', '.join(hosts)}"
                                      + (f"; out through your proxy {through}" if through else ""))


def starting(resolved: ResolvedImage, remote: str | None = None) -> Status:
    """The last word before the container starts; on a remote engine (at `remote`) the
    workspace goes there first, which for a big one the first time takes seconds."""
    where = (f" on the engine at {remote}, after copying there what changed in the workspace"
             if remote else "")
    return Status("starting-sandbox", f"starting the sandbox ({resolved.ref}, "
                                      f"claude {resolved.claude_version}){where}")


@dataclass
class PlannedContainer:
    container: ContainerSpec
    config: ConfigDir
    resolved: ResolvedImage
    egress: EgressLink | None = None  # `proxy` mode: the proxy serving this container


@dataclass
class PreparedSandbox(PreparedLaunch):
    """A launch whose sandbox image is resolved (built if it had to be)."""

    image: ResolvedImage


class SandboxManager:
    _shared: SandboxManager | None = None
    _shared_lock = threading.Lock()

    def __init__(self, *, labels: Mapping[str, str] | None = None) -> None:
        self.labels = {**labels_from_env(), **dict(labels or {})}
        self._engine: eng.Engine | None = None
        self._reaped = False
        self._connecting = threading.Lock()
        self._live: dict[str, ContainerProcess] = {}
        self._memo: StatMemo | None = None
        atexit.register(self._remove_live_at_exit)

    @classmethod
    def shared(cls) -> SandboxManager:
        with cls._shared_lock:
            if cls._shared is None:
                cls._shared = cls()
            return cls._shared

    @classmethod
    def existing(cls) -> SandboxManager | None:
        """The process's manager if one was made (nothing to close otherwise)."""
        return cls._shared

    # -- engine ----------------------------------------------------------------------------

    async def engine(self) -> eng.Engine:
        """The connected engine; the first connection also reaps orphaned containers."""
        if self._engine is None or not self._reaped:
            return await anyio.to_thread.run_sync(self.engine_blocking, abandon_on_cancel=True)
        return self._engine

    def engine_blocking(self) -> eng.Engine:
        """`engine()` for blocking code (a CLI run's head start, before the event loop)."""
        with self._connecting:
            if self._engine is None:
                self._engine = eng.connect()
            engine = self._engine
            if not self._reaped:
                self._reaped = True
                try:
                    removed = reap_orphans(engine.api)
                    if removed:
                        log.info("removed %d orphaned sandbox container(s)", len(removed))
                    prune_job_dirs()
                except Exception as exc:
                    log.warning("could not reap orphaned sandboxes: %s", exc)
            return engine

    def resolver(self, engine: eng.Engine, options: DockerOptions) -> ImageResolver:
        if self._memo is None:
            self._memo = StatMemo.default()
        return ImageResolver(engine, labels=self.labels, memo=self._memo,
                             user=sandbox_user(options)[2])

    async def resolve_image(self, options: DockerOptions, workspace: Path, *,
                            force_build: bool = False) -> AsyncIterator[Status | ResolvedImage]:
        """The image for these options (build on a miss): statuses, then one ResolvedImage."""
        from ..trust import is_trusted

        engine = await self.engine()
        resolver = self.resolver(engine, options)
        async for item in resolver.resolve(options, workspace, trusted=is_trusted(workspace),
                                           force_build=force_build):
            yield item

    # -- Backend ---------------------------------------------------------------------------

    snapshot_id: str | None = None

    async def prepare(self, spec: LaunchSpec) -> AsyncGenerator[Status | PreparedLaunch, None]:
        async for item in self.prepare_sandbox(spec):
            yield item

    async def prepare_sandbox(self, spec: LaunchSpec) -> AsyncGenerator[Status | PreparedSandbox, None]:
        """`prepare()`, typed for the warm backends that build on it."""
        options = spec.options.docker or DockerOptions()
        self.check_spec(spec)
        yield RESOLVING
        resolved: ResolvedImage | None = None
        async for item in self.resolve_image(options, spec.workspace):
            if isinstance(item, ResolvedImage):
                resolved = item
            else:
                yield item
        assert resolved is not None
        shown = await network_status(spec)
        if shown is not None:
            yield shown
        site = await anyio.to_thread.run_sync(self.site, options)
        yield starting(resolved, site.host if site.remote else None)
        yield PreparedSandbox(spec, resolved)

    async def start(self, prepared: PreparedLaunch) -> ClaudeProcess:
        spec = prepared.spec
        planned = await self.plan(prepared)
        engine = await self.engine()
        site = await anyio.to_thread.run_sync(self.site, spec.options.docker or DockerOptions())
        try:
            if planned.egress is not None:
                await anyio.to_thread.run_sync(planned.egress.serve)
            if site.remote:
                return await self._start_remote(engine, site, spec, planned)
            process = await ContainerProcess.start(
                engine, planned.container, on_exit=self.on_exit(spec.job_id, planned))
        except BaseException:
            if planned.egress is not None:
                planned.egress.close()
            raise
        self.adopt(spec.job_id, process)
        return process

    _site: EngineSite | None = None

    def site(self, options: DockerOptions) -> EngineSite:
        """Where the engine is: on another machine, a job's files are copied to it instead of
        bind-mounted (`sandbox.remote`). `docker.remote` overrides the engine's answer.
        Blocking."""
        from .remote.detect import locate, overridden

        engine = self.engine_blocking()
        if self._site is None:
            self._site = locate(engine.api, engine.host, engine.transport)
        return overridden(self._site, options.remote, engine.api)

    async def _start_remote(self, engine: eng.Engine, site: EngineSite, spec: LaunchSpec,
                            planned: PlannedContainer) -> ClaudeProcess:
        from .remote.process import start_remote

        uid, gid, _ = sandbox_user(spec.options.docker or DockerOptions())
        process = await start_remote(engine, site, spec, planned, uid=uid, gid=gid,
                                     labels=self.labels,
                                     on_exit=self.on_exit(spec.job_id, planned))
        self.adopt(spec.job_id, process.inner)
        return process

    def release(self) -> None:
        pass

    def adopt(self, job_id: str, process: ContainerProcess) -> None:
        """Own a running job's container: `close()` and process exit remove it."""
        self._live[job_id] = process

    def on_exit(self, job_id: str, planned: PlannedContainer) -> Callable[[], None]:
        """What a job's container does when it is gone: forgotten, its config dir finished,
        its egress proxy stopped."""
        def finished() -> None:
            self._live.pop(job_id, None)
            planned.config.finish()
            if planned.egress is not None:
                planned.egress.close()

        return finished

    def check_spec(self, spec: LaunchSpec) -> None:
        """What `prepare()` checks before any engine work (raises ConfigError)."""
        self._check_options(spec.options.docker or DockerOptions(), spec.workspace)
        self._argv(spec)

    async def plan(self, prepared: PreparedLaunch) -> PlannedContainer:
        """The hardened container for this run (image resolved, config dir prepared), not started.

        `start()` runs it as a one-shot container; `sandbox.warm` keeps one alive for a session.
        A launch another backend prepared has its image resolved here.
        """
        spec = prepared.spec
        resolved = prepared.image if isinstance(prepared, PreparedSandbox) else None
        if resolved is None:
            async for item in self.resolve_image(spec.options.docker or DockerOptions(),
                                                 spec.workspace):
                if isinstance(item, ResolvedImage):
                    resolved = item
        assert resolved is not None
        return await anyio.to_thread.run_sync(self.assemble, spec, resolved)

    def assemble(self, spec: LaunchSpec, resolved: ResolvedImage) -> PlannedContainer:
        """`plan()` once the image is known: blocking (it prepares the config dir)."""
        options = spec.options.docker or DockerOptions()
        uid, gid, user = sandbox_user(options)
        user_mounts = self._check_options(options, spec.workspace)
        argv, path_mounts = self._argv(spec)
        ca = ca_bundle_path(options.ca_certificates)
        env = self.environment(spec, options, uid=uid, ca=ca is not None)
        egress, prelude = None, ""
        if options.network == "proxy":
            from .container.egress_link import PRELUDE, open_link

            prelude = PRELUDE
            egress = open_link(options, spec.workspace, {**os.environ, **spec.env},
                               ca_bundle=ca, uid=uid)
            for name in (*PASS_ENV, *PROXY_VARS, *egress.env):  # the host's proxy stays out
                env.pop(name, None)
            env.update(egress.env)
            egress.attach(spec.on_blocked, spec.ask_network)
        config_path = config_dir_for(session=spec.session, workspace=spec.workspace,
                                     job_id=spec.job_id,
                                     resume=spec.options.resume, explicit=spec.config_dir)
        try:
            config = prepare_config_dir(config_path, uid=uid, gid=gid, env=env,
                                        login=egress.login_file if egress else None,
                                        copy_login=egress is None)
        except BaseException:
            if egress is not None:
                egress.close()
            raise
        mounts = [Mount(spec.cwd.resolve(), WORKSPACE),
                  *(Mount(m.host.resolve(), posixpath.join(WORKSPACE, m.target), m.read_only)
                    for m in spec.mounts),
                  Mount(config_path.resolve(), CONFIG_DIR)]
        if ca is not None:
            mounts.append(Mount(ca.resolve(), CA_FILE, read_only=True))
        mounts += user_mounts
        mounts += [m for m in path_mounts if m.container not in {u.container for u in mounts}]
        if egress is not None:
            mounts += egress.mounts
        home = (f"rw,exec,nosuid,nodev,size=512m,uid={uid},gid={gid},mode=0700"
                if uid is not None and gid is not None else "rw,exec,nosuid,nodev,size=512m,mode=1777")
        labels = {**self.labels, MANAGED: "1", JOB: spec.job_id, SESSION: spec.session or "",
                  WORKSPACE_LABEL: str(spec.workspace), OWNER: owner_label()}
        cpus = min(options.cpus, float(os.cpu_count() or options.cpus))
        container = ContainerSpec(
            image=resolved.ref,
            argv=argv, env=env, mounts=tuple(mounts), user=user,
            memory=options.memory_bytes, memory_text=options.memory, cpus=cpus,
            pids_limit=options.pids_limit, network=ENGINE_NETWORK[options.network], labels=labels,
            tmpfs={"/tmp": TMP_OPTIONS, HOME: home}, prelude=prelude)
        return PlannedContainer(container, config, resolved, egress)

    # -- pieces ----------------------------------------------------------------------------

    def _check_options(self, options: DockerOptions, workspace: Path) -> list[Mount]:
        """Validate what the user gave before any engine work, so mistakes fail fast."""
        sandbox_user(options)
        check_env(options.env)
        return parse_mounts(options.mounts, workspace)

    def _argv(self, spec: LaunchSpec) -> tuple[list[str], list[Mount]]:
        """claude's argv for inside the sandbox (host paths translated) and its extra mounts."""
        argv, mounts = sandbox_argv(spec.argv, cwd=spec.cwd)
        return ["claude", *argv[1:]], mounts

    def environment(self, spec: LaunchSpec, options: DockerOptions, *, uid: int | None,
                    ca: bool) -> dict[str, str]:
        """The sandbox's environment. Secret values are registered for redaction."""
        env = {name: os.environ[name] for name in PASS_ENV if os.environ.get(name)}
        env.update(proxy_env(self._engine.host if self._engine is not None else None))
        env.update(spec.env)
        env.update(QUIET_ENV)
        env.update({"HOME": HOME, "CLAUDE_CONFIG_DIR": CONFIG_DIR, "GIT_CONFIG_COUNT": "1",
                    "GIT_CONFIG_KEY_0": "safe.directory", "GIT_CONFIG_VALUE_0": "*"})
        if uid == 0:
            env["IS_SANDBOX"] = "1"
        if ca:
            env["NODE_EXTRA_CA_CERTS"] = CA_FILE
        user_env = check_env(options.env)
        register_env(env)
        register_env(user_env, all_values=True)
        env.update(user_env)
        return env

    async def close(self) -> None:
        """Stop every container this process still owns: the jobs' and, as a last sweep by
        owner, any other (a warm sandbox mid-turn, a standby, one caught mid-start)."""
        for process in list(self._live.values()):
            await process.terminate()
        if self._engine is not None:
            try:
                removed = await eng.call("removing the sandboxes", remove_owned,
                                         self._engine.api, owner_label())
            except Exception as exc:
                log.warning("could not remove this process's sandboxes: %s", exc)
            else:
                if removed:
                    log.info("removed %d sandbox container(s) left at exit", len(removed))

    def _remove_live_at_exit(self) -> None:
        if not self._live or self._engine is None:
            return
        for process in list(self._live.values()):
            with contextlib.suppress(Exception):
                self._engine.api.remove_container(process.id, force=True)
