"""Hardened containers: create, attach-before-start, read, wait, kill.

`ContainerSpec` is everything about one container; `create_args` turns it into docker-py
arguments and `run_line` into the equivalent `docker run` line (secrets redacted). A one-shot
job is a `ContainerProcess`: the container runs claude as its command, its output is attached
before start (no early output lost) and read by a `ThreadedIterator`. The engine removes the
container itself when it exits (AutoRemove), so a finished job never waits for a removal; the
exit code and an OOM kill are read from the engine's event stream, subscribed before start.
`terminate()` kills and removes a container that is still running. The attach also holds the
container's stdin, its lifeline (`SUPERVISE`): however the owning process ends, even by
SIGKILL, the engine closes that stdin and claude is stopped within seconds. `StreamedProcess` holds
what any attached or exec'd claude needs (stdout channel, stderr tail, command line), so a
long-lived container running claude through `exec` can be added beside `ContainerProcess`
without touching it.
"""

from __future__ import annotations

import contextlib
import logging
import shlex
import threading
import time
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from typing import Any

import anyio

from ...backend import TailBuffer
from ...errors import ChannelCoderError, OutOfMemory, SandboxError
from ...redact import redact
from .. import engine as eng
from ..engine.api import EngineError, NotFound
from ..engine.streams import ThreadedIterator
from .mounts import WORKSPACE, Mount

log = logging.getLogger(__name__)

KILLED_CODES = (137, 143)
# The lifeline: a one-shot container's stdin is a pipe from its owner (attached before start,
# `StdinOnce`), which the engine closes when the owner's connection closes — when the owner
# exits or is killed, however it ends. This supervisor runs claude (its stdin /dev/null) and
# ends it at that end of file: SIGTERM, SIGKILL 2 s later. The container's exit code is
# claude's. POSIX sh only, so it works in any image that has claude.
SUPERVISE = ('exec 3<&0 </dev/null; "$@" 3<&- & c=$!; '
             '{ while read -r _; do :; done; kill -TERM "$c"; sleep 2; kill -KILL "$c"; } '
             '<&3 >/dev/null 2>&1 & exec 3<&-; wait "$c"')


@dataclass(frozen=True)
class ContainerSpec:
    image: str
    argv: list[str]
    env: Mapping[str, str]
    mounts: tuple[Mount, ...]
    user: str
    memory: int
    memory_text: str
    cpus: float
    pids_limit: int
    network: str = "bridge"
    labels: Mapping[str, str] = field(default_factory=dict)
    tmpfs: Mapping[str, str] = field(default_factory=dict)
    workdir: str = WORKSPACE
    read_only: bool = True
    auto_remove: bool = True
    lifeline: bool = True  # ends when its owner's attached stdin closes (SUPERVISE)
    prelude: str = ""  # a shell command started in the background first (the egress forwarder)

    def command(self) -> list[str]:
        """What the container runs: argv, under the lifeline supervisor when it has one."""
        argv = ["sh", "-c", SUPERVISE, "sh", *self.argv] if self.lifeline else list(self.argv)
        if self.prelude:
            return ["sh", "-c", f'{self.prelude} & exec "$@"', "sh", *argv]
        return argv


def create_args(spec: ContainerSpec) -> dict[str, Any]:
    """The Engine API body of `POST /containers/create` (hardened host config)."""
    host_config = {
        "Binds": [m.bind for m in spec.mounts],
        "NetworkMode": spec.network,
        "CapDrop": ["ALL"],
        "SecurityOpt": ["no-new-privileges"],
        "Init": True,
        "PidsLimit": spec.pids_limit,
        "Memory": spec.memory,
        "MemorySwap": spec.memory,
        "NanoCpus": int(spec.cpus * 1e9),
        "Tmpfs": dict(spec.tmpfs),
        "ReadonlyRootfs": spec.read_only,
        "AutoRemove": spec.auto_remove,
    }
    command = spec.command()
    return {"Image": spec.image, "Entrypoint": command[:1], "Cmd": command[1:],
            "Env": [f"{name}={value}" for name, value in spec.env.items()],
            "User": spec.user, "WorkingDir": spec.workdir, "Labels": dict(spec.labels),
            "OpenStdin": spec.lifeline, "StdinOnce": spec.lifeline,
            "AttachStdin": spec.lifeline, "Tty": False, "AttachStdout": True,
            "AttachStderr": True, "HostConfig": host_config}


def run_line(spec: ContainerSpec) -> str:
    """The equivalent `docker run` command line, with every registered secret redacted."""
    parts = ["docker", "run", "--rm", "--init", *(["-i"] if spec.lifeline else []),
             "--user", spec.user, "--cap-drop", "ALL",
             "--security-opt", "no-new-privileges", "--pids-limit", str(spec.pids_limit),
             "--memory", spec.memory_text, "--memory-swap", spec.memory_text,
             "--cpus", f"{spec.cpus:g}", "--network", spec.network]
    if spec.read_only:
        parts.append("--read-only")
    for path, options in spec.tmpfs.items():
        parts += ["--tmpfs", f"{path}:{options}" if options else path]
    for mount in spec.mounts:
        parts += ["-v", mount.bind]
    parts += ["-w", spec.workdir]
    for name, value in spec.env.items():
        parts += ["-e", f"{name}={value}"]
    for name, value in spec.labels.items():
        parts += ["--label", f"{name}={value}"]
    command = spec.command()
    parts += ["--entrypoint", command[0], spec.image, *command[1:]]
    return redact(shlex.join(parts))


# ---------------------------------------------------------------------------------------------
# Processes


class _LockedTail:
    def __init__(self) -> None:
        self._buffer = TailBuffer()
        self._lock = threading.Lock()

    def write(self, data: bytes) -> None:
        with self._lock:
            self._buffer.write(data)

    def text(self) -> str:
        with self._lock:
            return self._buffer.text()


def _stdout_only(frames: Any, stderr: _LockedTail) -> Iterator[bytes]:
    """(stdout, stderr) frames -> stdout bytes; stderr goes to the tail buffer."""
    for out, err in frames:
        if err:
            stderr.write(err)
        if out:
            yield out


class StreamedProcess:
    """Output side of a claude in a container: cancellation-safe stdout, stderr tail."""

    def __init__(self, frames: Any, command_line: str, close_frames: Callable[[], None]) -> None:
        self.command_line = command_line
        self._stderr = _LockedTail()
        self._output: ThreadedIterator[bytes] = ThreadedIterator(
            _stdout_only(frames, self._stderr), close_source=close_frames, name="channelcoder-attach")
        self._output.start()

    async def read(self) -> bytes:
        try:
            return await self._output.receive()
        except anyio.EndOfStream:
            return b""
        except Exception as exc:
            log.debug("the sandbox output stream ended with %r", exc)
            return b""

    def stderr_tail(self) -> str:
        return self._stderr.text()

    def close_output(self) -> None:
        self._output.close()


class _Lifecycle:
    """The engine's `oom` and `die` events for one container, read by a daemon thread."""

    def __init__(self, events: Any) -> None:
        self._events = events
        self.oom = False
        self.exit_code: int | None = None
        self.ended = threading.Event()
        threading.Thread(target=self._read, name="channelcoder-events", daemon=True).start()

    def _read(self) -> None:
        try:
            for event in self._events:
                action = event.get("Action") or event.get("status")
                if action == "oom":
                    self.oom = True
                elif action == "die":
                    code = (event.get("Actor") or {}).get("Attributes", {}).get("exitCode")
                    self.exit_code = int(code) if str(code).lstrip("-").isdigit() else -1
                    return
        except Exception as exc:
            log.debug("the sandbox event stream ended: %r", exc)
        finally:
            self.ended.set()

    def close(self) -> None:
        with contextlib.suppress(Exception):
            self._events.close()


class ContainerProcess(StreamedProcess):
    """A one-shot container whose command is claude. Owns the container."""

    def __init__(self, engine: eng.Engine, spec: ContainerSpec, cid: str, stream: Any,
                 events: Any, on_exit: Callable[[], None] | None = None) -> None:
        super().__init__(stream, run_line(spec), stream.close)
        self.engine = engine
        self.spec = spec
        self.id = cid
        self._life = _Lifecycle(events)
        self._on_exit = on_exit
        self._exit: int | None = None
        self._failure: ChannelCoderError | None = None
        self._terminating = False
        self._closed = False

    @classmethod
    async def start(cls, engine: eng.Engine, spec: ContainerSpec,
                    on_exit: Callable[[], None] | None = None) -> ContainerProcess:
        made: list[str] = []
        try:
            cid, stream, events = await eng.call("starting the sandbox", launch_blocking, engine,
                                                 spec, made=made, abandon=False)
        except BaseException as exc:
            if made:
                with anyio.CancelScope(shield=True), contextlib.suppress(Exception):
                    await eng.call("removing the sandbox", force_remove, engine.api, made[0])
            if isinstance(exc, SandboxError):
                raise SandboxError(exc.message, hint="check the image and the Docker options "
                                                     "(--verbose prints the docker run line)") from exc
            raise
        return cls(engine, spec, cid, stream, events, on_exit)

    async def wait(self) -> int:
        if self._exit is not None:
            return self._exit
        await anyio.to_thread.run_sync(self._life.ended.wait, abandon_on_cancel=True)
        code = self._life.exit_code
        if code is None:
            code = await self._wait_without_events()
        self._exit = code
        if self._life.oom:
            self._failure = OutOfMemory(f"sandbox ran out of memory (limit {self.spec.memory_text})")
        elif code in KILLED_CODES and not self._terminating and self._failure is None:
            self._failure = SandboxError(
                f"the sandbox was stopped from outside (claude was killed, exit code {code})",
                hint="something ran 'docker kill', 'docker stop' or 'docker rm -f' on the "
                     "container; run the job again")
        return code

    async def _wait_without_events(self) -> int:
        """The event stream broke before `die`: ask the engine (raises if it is gone)."""
        try:
            result = await eng.call("waiting for the sandbox", self.engine.stream_api.wait,
                                    self.id)
            state = (await eng.call("inspecting the sandbox", self.engine.api.inspect_container,
                                    self.id)).get("State", {})
        except SandboxError as exc:
            if not eng.is_not_found(exc):
                raise
            if not self._terminating:
                self._failure = SandboxError(
                    "the sandbox container disappeared while claude was running",
                    hint="something removed it ('docker rm -f'?); run the job again")
            return 137
        self._life.oom = self._life.oom or bool(state.get("OOMKilled"))
        return int(result.get("StatusCode", -1))

    def failure(self) -> Exception | None:
        return self._failure

    async def terminate(self) -> None:
        """Kill and remove the container if it still runs (an exited one removes itself)."""
        with anyio.CancelScope(shield=True):
            if self._closed:
                return
            self._closed = True
            self._terminating = True
            self.close_output()
            if self._exit is None or not self.spec.auto_remove:
                try:
                    await eng.call("removing the sandbox", force_remove, self.engine.api, self.id)
                except Exception as exc:
                    log.warning("could not remove the sandbox container %s: %s",
                                self.id[:12], exc)
            self._life.close()
            if self._on_exit is not None:
                try:
                    self._on_exit()
                except Exception:
                    log.exception("sandbox clean-up failed")


def launch_blocking(engine: eng.Engine, spec: ContainerSpec, *, made: list[str],
                    start: bool = True) -> tuple[str, Any, Any]:
    """Create the container, subscribe to its events, attach, start (unless `start=False`).
    Blocking. The id goes into `made` as soon as it exists, so the caller can remove it."""
    api = engine.api
    opened: list[Any] = []
    try:
        cid = str(api.create_container(create_args(spec))["Id"])
        made.append(cid)
        events = engine.stream_api.events(filters={"container": cid, "event": ["oom", "die"]})
        opened.append(events)
        stream = engine.stream_api.attach(cid, stdout=True, stderr=True, logs=True,
                                          stdin=spec.lifeline)
        opened.append(stream)
        if start:
            api.start(cid)
    except BaseException:
        for stream_or_events in opened:
            with contextlib.suppress(Exception):
                stream_or_events.close()
        raise
    return cid, stream, events


def force_remove(api: Any, cid: str, timeout: float = 10.0) -> None:
    """Force-remove; when the engine is already removing it (AutoRemove), wait until it is gone."""
    try:
        api.remove_container(cid, force=True)
        return
    except NotFound:
        return
    except EngineError as exc:
        if exc.status_code != 409:
            raise
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            api.inspect_container(cid)
        except NotFound:
            return
        time.sleep(0.02)
