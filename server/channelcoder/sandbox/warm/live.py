"""A live claude in a warm container: one long-lived process, one user message per turn.

`claude -p --input-format stream-json --output-format stream-json --verbose …` is started with
`docker exec -d` under a small shell that records its pid and exit code. Its stdin is a FIFO in
its live directory, opened read-write by that shell so claude never sees end-of-file between
turns; its stdout and stderr are append-only files there. Any channelcoder process can therefore
run the next turn — write one `user_turn()` line to the FIFO, tail stdout up to the turn's
`result` line — and the process outlives the CLI run that started it.

`Live` is that process, wherever its directory is: `LiveProcess` reads and writes it in the warm
directory on this machine (bind-mounted); on a remote engine it lives in the container and
`sandbox.remote.live.ContainerLive` reaches it through `exec`.

Verified with the pinned CLI 2.1.197 (recorded in docs/warm-and-standby.md): nothing is printed
at spawn; each turn prints `system/init` again, its messages, then exactly one `result`; the
session id stays the same across turns (a `--resume ID` process keeps ID); the interrupt control
message `{"type":"control_request","request_id":…,"request":{"subtype":"interrupt"}}` is
answered with a `control_response` line and the turn ends with a `result` of subtype
`error_during_execution`, after which the process takes the next turn normally.
"""

from __future__ import annotations

import contextlib
import errno
import fcntl
import hashlib
import json
import logging
import os
import secrets
import shlex
import stat
import threading
import time
from abc import ABC, abstractmethod
from collections.abc import Awaitable, Callable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import anyio

from ... import hostfs
from ...claude.argv import BASE_FLAGS, INTERRUPT, user_turn
from ...errors import ChannelCoderError, OutOfMemory, SandboxError
from ...redact import redact
from .. import engine as eng
from ..container.process import _Lifecycle
from ..engine.streams import ThreadedIterator
from .sandbox import WARM_MOUNT

log = logging.getLogger(__name__)

LIVE_FLAGS = ("--input-format", "stream-json")
INTERRUPT_GRACE = 2.0
POLL_MIN, POLL_MAX = 0.002, 0.05
POLL_FAST_FOR = 1.0  # poll every 2 ms for this long after the last output, then back off
CHUNK = 256 * 1024
# `$1` is the live directory inside the container (made here when this machine did not make it);
# the rest is claude's argv.
SPAWN = ('d="$1"; shift; mkdir -p "$d" && { [ -p "$d/in" ] || mkfifo -m 600 "$d/in"; } && '
         ': >>"$d/out" && : >>"$d/err" || exit 1; '
         '"$@" <>"$d/in" >>"$d/out" 2>>"$d/err" & echo $! >"$d/pid"; wait $!; echo $? >"$d/exit"')
# `$1` the live directory, `$2` the signal: stop claude, wait up to 2 s for its exit code.
STOP = ('read -r p <"$1/pid" 2>/dev/null || exit 0; [ -f "$1/exit" ] && exit 0; '
        'kill -"$2" "$p" 2>/dev/null; n=0; while [ "$n" -lt 40 ]; do [ -f "$1/exit" ] && exit 0; '
        'kill -0 "$p" 2>/dev/null || exit 0; sleep 0.05; n=$((n + 1)); done')
_RESULT = b'{"type":"result"'


class LiveUnavailable(Exception):
    """The live process cannot take a turn (it died, or never started)."""


# ---------------------------------------------------------------------------------------------
# argv


@dataclass(frozen=True)
class LiveArgv:
    """A one-shot argv split for a live process: fixed flags, the turn's prompt, the resume id."""

    flags: tuple[str, ...]
    prompt: str
    resume: str | None

    @property
    def key(self) -> str:
        return hashlib.sha256("\0".join(self.flags).encode()).hexdigest()[:24]

    def spawn(self) -> list[str]:
        """The live process's argv (`--resume` before any variadic flag)."""
        head = 1 + len(BASE_FLAGS)
        resume = ["--resume", self.resume] if self.resume else []
        return [*self.flags[:head], *resume, *self.flags[head:]]


def split_argv(argv: Sequence[str]) -> LiveArgv:
    """`claude -p … -- PROMPT` (claude.argv.build_argv) -> its live form."""
    if "--" not in argv:
        raise ValueError("the argv has no prompt")
    at = list(argv).index("--")
    prompt = argv[at + 1] if at + 1 < len(argv) else ""
    flags = list(argv[:at])
    resume: str | None = None
    if "--resume" in flags:
        index = flags.index("--resume")
        resume = flags[index + 1] if index + 1 < len(flags) else None
        del flags[index:index + 2]
    head = 1 + len(BASE_FLAGS)
    if "--input-format" not in flags:
        flags[head:head] = list(LIVE_FLAGS)
    return LiveArgv(tuple(flags), prompt, resume)


# ---------------------------------------------------------------------------------------------
# The process


class Live(ABC):
    """One live claude in a warm container (see the module doc); blocking methods unless async."""

    id: str
    container_id: str
    inside: str  # its live directory in the container

    @abstractmethod
    def exit_code(self) -> int | None:
        """Its exit code once it has ended, else None."""

    @abstractmethod
    def ended(self) -> bool:
        """Whether its end is already known here (cheap: no engine call)."""

    @abstractmethod
    def alive(self) -> bool:
        """It runs and reads its stdin."""

    @abstractmethod
    def idle(self) -> bool:
        """Between turns: nothing printed yet, or the last turn ended with its `result`."""

    @abstractmethod
    def stderr_tail(self) -> str: ...

    @abstractmethod
    def output_tail(self, limit: int) -> bytes:
        """The last `limit` bytes of its stdout."""

    @abstractmethod
    def send(self, message: dict[str, Any]) -> None:
        """Write one JSON line to claude's stdin; raises LiveUnavailable if it died."""

    @abstractmethod
    def follow_turn(self, stop: threading.Event, dead: Callable[[], bool]) -> Iterator[bytes]:
        """Start a turn's output afresh (claude appends, so it writes at the new end) and
        return what follows it: its stdout, until `stop` is set or claude is gone."""

    def close(self) -> None:  # noqa: B027 (only a followed stream needs closing)
        """Stop following (a turn has ended)."""

    async def warm_up(self, limit: float = 60.0) -> bool:
        """Wait until claude has started and reads its stdin: an interrupt while idle is only
        answered (`control_response`), so its answer says the process is ready. Leaves the
        output as it was (idle)."""
        ping = {**INTERRUPT, "request_id": "channelcoder-ready"}
        await anyio.to_thread.run_sync(self.send, ping)
        with anyio.move_on_after(limit):
            while b'"request_id":"channelcoder-ready"' not in await anyio.to_thread.run_sync(
                    self.output_tail, 4096):
                if not await anyio.to_thread.run_sync(self.alive):
                    return False
                await anyio.sleep(0.02)
            return True
        return False

    async def interrupt_to_idle(self, limit: float = INTERRUPT_GRACE) -> bool:
        """A turn abandoned by a crashed process: interrupt it and wait for its `result`."""
        if await anyio.to_thread.run_sync(self.idle):
            return True
        with contextlib.suppress(LiveUnavailable, OSError):
            await anyio.to_thread.run_sync(self.send, INTERRUPT)
        with anyio.move_on_after(limit):
            while not await anyio.to_thread.run_sync(self.idle):
                if not await anyio.to_thread.run_sync(self.alive):
                    return False
                await anyio.sleep(0.02)
            return True
        return False

    async def kill(self, engine: eng.Engine) -> None:
        """SIGTERM (SIGKILL after 2 s) through `exec`; the container stays. Never raises."""
        for signal in ("TERM", "KILL"):
            if self.ended():
                return
            with contextlib.suppress(Exception):
                made = await eng.call("stopping claude", engine.api.exec_create,
                                      self.container_id, ["sh", "-c", STOP, "sh", self.inside,
                                                          signal])
                await eng.call("stopping claude", engine.api.exec_start, made["Id"])
            if await anyio.to_thread.run_sync(self.exit_code) is not None or \
                    not await anyio.to_thread.run_sync(self.alive):
                return


async def spawn_in(engine: eng.Engine, live: Live, argv: Sequence[str], *, user: str,
                   workdir: str) -> None:
    """Start `argv` as `live`'s claude in its container (`docker exec -d`)."""
    def start() -> None:
        made = engine.api.exec_create(live.container_id, ["sh", "-c", SPAWN, "sh", live.inside,
                                                          *argv],
                                      user=user, workdir=workdir, stdout=False, stderr=False)
        engine.api.exec_start(made["Id"], detach=True)

    await eng.call("starting claude in the warm sandbox", start)


class LiveProcess(Live):
    """A live claude whose directory is this machine's `<warm dir>/live/<id>/`, bind-mounted."""

    def __init__(self, warm_dir: Path, live_id: str, container_id: str) -> None:
        self.id = live_id
        self.container_id = container_id
        self.host = warm_dir / "live" / live_id
        self.inside = f"{WARM_MOUNT}/live/{live_id}"

    @classmethod
    async def spawn(cls, engine: eng.Engine, warm_dir: Path, container_id: str,
                    argv: Sequence[str], *, user: str, workdir: str,
                    uid: int | None = None, gid: int | None = None) -> LiveProcess:
        process = cls(warm_dir, f"l-{secrets.token_hex(4)}", container_id)
        await anyio.to_thread.run_sync(process._make_files, uid, gid)
        await spawn_in(engine, process, argv, user=user, workdir=workdir)
        if not await anyio.to_thread.run_sync(process._wait_reader, 5.0,
                                              abandon_on_cancel=True):
            raise LiveUnavailable(f"claude did not start in the warm sandbox: "
                                  f"{process.stderr_tail() or 'no output'}")
        return process

    def _make_files(self, uid: int | None, gid: int | None) -> None:
        self.host.mkdir(parents=True, mode=0o700)
        os.mkfifo(self.host / "in", 0o600)
        for name in ("out", "err"):
            (self.host / name).touch(mode=0o600)
        if uid is not None and os.geteuid() == 0 and uid != 0:
            for path in (self.host, *(self.host / n for n in ("in", "out", "err"))):
                os.chown(path, uid, gid if gid is not None else uid)

    def _wait_reader(self, limit: float) -> bool:
        stop = threading.Event()
        waited = 0.0
        while waited < limit:
            if self.alive():
                return True
            if self.exit_code() is not None:
                return False
            stop.wait(0.005)
            waited += 0.005
        return False

    # -- state -----------------------------------------------------------------------------

    def exit_code(self) -> int | None:
        if not os.path.lexists(self.host / "exit"):
            return None
        text = read_live_tail(self.host, "exit", 64).decode("ascii", "replace").strip()
        return int(text) if text.lstrip("-").isdigit() else -1

    def ended(self) -> bool:
        return os.path.lexists(self.host / "exit")

    def alive(self) -> bool:
        """True while claude holds its stdin FIFO open (no reader: ENXIO)."""
        if os.path.lexists(self.host / "exit"):
            return False
        try:
            fd = hostfs.open_in(self.host, "in", os.O_WRONLY, stat.S_IFIFO)
        except OSError:
            return False
        os.close(fd)
        return True

    def idle(self) -> bool:
        """(However long the last line is: a long final answer is one line.)"""
        try:
            for head in line_heads_from_end(self.host, "out"):
                line = head.lstrip()
                if line and not line.startswith(b'{"type":"control_response"'):
                    return line.startswith(_RESULT)
        except OSError:
            return False
        return True

    def stderr_tail(self) -> str:
        text = read_live_tail(self.host, "err", 16 * 1024).decode("utf-8", "replace").strip()
        return "\n".join(text.splitlines()[-20:])

    def output_tail(self, limit: int) -> bytes:
        return read_live_tail(self.host, "out", limit)

    # -- input and output ------------------------------------------------------------------

    def send(self, message: dict[str, Any]) -> None:
        data = (json.dumps(message, ensure_ascii=False) + "\n").encode()
        try:
            fd = hostfs.open_in(self.host, "in", os.O_WRONLY, stat.S_IFIFO)
        except OSError as exc:
            raise LiveUnavailable("the live claude process is gone") from exc
        try:
            flags = fcntl.fcntl(fd, fcntl.F_GETFL)
            fcntl.fcntl(fd, fcntl.F_SETFL, flags & ~os.O_NONBLOCK)
            view = memoryview(data)
            while view:
                view = view[os.write(fd, view):]
        except OSError as exc:
            if exc.errno in (errno.EPIPE, errno.ENXIO):
                raise LiveUnavailable("the live claude process is gone") from exc
            raise
        finally:
            os.close(fd)

    def reset_output(self) -> None:
        for name in ("out", "err"):
            with contextlib.suppress(OSError):
                fd = hostfs.open_in(self.host, name, os.O_WRONLY, stat.S_IFREG)
                try:
                    os.ftruncate(fd, 0)
                finally:
                    os.close(fd)

    def follow_turn(self, stop: threading.Event, dead: Callable[[], bool]) -> Iterator[bytes]:
        self.reset_output()
        return _tail(self.host, "out", stop, dead)


# ---------------------------------------------------------------------------------------------
# One turn


class _ContainerEvents:
    """The engine's oom/die events of one container, subscribed by the thread that reads them
    (so a turn does not wait for the subscription; `since` covers the moments before it)."""

    def __init__(self, engine: eng.Engine, container_id: str) -> None:
        self._engine = engine
        self._container = container_id
        self._since = int(time.time()) - 1
        self._stream: Any = None
        self._closed = False
        self._lock = threading.Lock()

    def __iter__(self) -> Iterator[dict[str, Any]]:
        stream = self._engine.stream_api.events(
            since=self._since,
            filters={"container": self._container, "event": ["oom", "die"]})
        with self._lock:
            if self._closed:
                stream.close()
                return iter(())
            self._stream = stream
        return iter(stream)

    def close(self) -> None:
        with self._lock:
            self._closed = True
            if self._stream is not None:
                with contextlib.suppress(Exception):
                    self._stream.close()


TurnEnd = Callable[[str, dict[str, Any] | None], Awaitable[None]]
"""Called once when a turn ends: outcome ("done", "interrupted", "dead", "stuck") and the
turn's parsed `result` line, if any. A `ChannelCoderError` it raises becomes the turn's
failure."""


def read_live_tail(directory: Path, name: str, limit: int = 64 * 1024) -> bytes:
    """The last `limit` bytes of a regular file in a live directory (b"" when unsafe or gone)."""
    try:
        fd = hostfs.open_in(directory, name, os.O_RDONLY, stat.S_IFREG)
    except OSError:
        return b""
    try:
        size = os.fstat(fd).st_size
        return os.pread(fd, limit, max(0, size - limit))
    except OSError:
        return b""
    finally:
        os.close(fd)


def line_heads_from_end(directory: Path, name: str, head: int = 64) -> Iterator[bytes]:
    """The first `head` bytes of each line of a live file, the last line first."""
    fd = hostfs.open_in(directory, name, os.O_RDONLY, stat.S_IFREG)
    try:
        end = os.fstat(fd).st_size
        if end and os.pread(fd, 1, end - 1) == b"\n":
            end -= 1
        while end > 0:
            start = _line_start(fd, end)
            yield os.pread(fd, min(head, end - start), start)
            end = start - 1
    finally:
        os.close(fd)


def _line_start(fd: int, end: int) -> int:
    """Where the line that ends at `end` starts (just after the newline before it)."""
    while end > 0:
        low = max(0, end - CHUNK)
        newline = os.pread(fd, end - low, low).rfind(b"\n")
        if newline >= 0:
            return low + newline + 1
        end = low
    return 0


def _tail(directory: Path, name: str, stop: threading.Event,
          dead: Callable[[], bool]) -> Iterator[bytes]:
    """Follow a growing file until stopped or its writer is gone. Polls every 2 ms while output
    is recent (a turn's lines come in bursts), backing off to 50 ms over a long silence."""
    with os.fdopen(hostfs.open_in(directory, name, os.O_RDONLY, stat.S_IFREG), "rb") as handle:
        delay = POLL_MIN
        last = time.monotonic()
        while not stop.is_set():
            data = handle.read(CHUNK)
            if data:
                delay, last = POLL_MIN, time.monotonic()
                yield data
                continue
            if dead():
                rest = handle.read()
                if rest:
                    yield rest
                return
            stop.wait(delay)
            if time.monotonic() - last > POLL_FAST_FOR:
                delay = min(delay * 1.5, POLL_MAX)


class TurnSplitter:
    """Cuts a live process's stdout after the turn's `result` line (which it parses)."""

    def __init__(self) -> None:
        self.done = False
        self.result: dict[str, Any] | None = None
        self._line = bytearray()

    def feed(self, chunk: bytes) -> bytes:
        """The part of `chunk` that belongs to this turn (all of it until the result)."""
        if self.done:
            return b""
        start = 0
        while True:
            newline = chunk.find(b"\n", start)
            segment = chunk[start:newline if newline >= 0 else len(chunk)]
            if len(self._line) < 64 or _starts_result(self._line):
                self._line += segment
            if newline < 0:
                return chunk
            if _starts_result(self._line):
                with contextlib.suppress(ValueError):
                    parsed = json.loads(bytes(self._line))
                    self.result = parsed if isinstance(parsed, dict) else None
                self.done = True
                return chunk[:newline + 1]
            self._line.clear()
            start = newline + 1


class LiveTurn:
    """One turn in a live process, as a `runner.ClaudeProcess`: its bytes end at its `result`.

    `terminate()` before the result interrupts the turn (the CLI's control message) and, if no
    `result` comes within 2 s, reports "stuck" so the owner kills the container.
    """

    def __init__(self, engine: eng.Engine, live: Live, *, command_line: str,
                 memory_text: str, on_end: TurnEnd) -> None:
        self.command_line = command_line
        self.engine = engine
        self.live = live
        self._split = TurnSplitter()
        self._memory_text = memory_text
        self._on_end = on_end
        self._stop = threading.Event()
        self._life: _Lifecycle | None = None
        self._output: ThreadedIterator[bytes] | None = None
        self._ended = False
        self._terminating = False
        self._exit: int | None = None
        self._end_failure: ChannelCoderError | None = None

    @classmethod
    async def begin(cls, engine: eng.Engine, live: Live, prompt: str, *,
                    command_line: str, memory_text: str, on_end: TurnEnd) -> LiveTurn:
        """Send the turn's user message (the process must be idle) and follow its output."""
        turn = cls(engine, live, command_line=command_line, memory_text=memory_text,
                   on_end=on_end)
        try:
            turn._life = _Lifecycle(_ContainerEvents(engine, live.container_id))
            source = await anyio.to_thread.run_sync(live.follow_turn, turn._stop, turn._dead)
            turn._output = ThreadedIterator(source, close_source=turn._stop.set,
                                            name="channelcoder-live")
            turn._output.start()
            await anyio.to_thread.run_sync(live.send, user_turn(prompt))
        except BaseException:
            turn._close_streams()
            raise
        return turn

    def _dead(self) -> bool:
        return self.live.ended() or (
            self._life is not None and self._life.exit_code is not None)

    # -- ClaudeProcess -----------------------------------------------------------------------

    @property
    def result(self) -> dict[str, Any] | None:
        return self._split.result

    @property
    def _done(self) -> bool:
        return self._split.done

    async def read(self) -> bytes:
        if self._done or self._output is None:
            return b""
        while True:
            try:
                chunk = await self._output.receive()
            except anyio.EndOfStream:
                return b""
            except Exception as exc:
                log.debug("the live output ended with %r", exc)
                return b""
            out = self._split.feed(chunk)
            if self._done:
                with anyio.CancelScope(shield=True):
                    await self._end("done")
            if out:
                return out

    async def wait(self) -> int:
        if self._done:
            return 0
        if self._exit is None:
            code = await anyio.to_thread.run_sync(self.live.exit_code)
            if code is None and self._life is not None and self._life.exit_code is not None:
                code = self._life.exit_code
            self._exit = 137 if code is None else code
            with anyio.CancelScope(shield=True):
                await self._end("dead")
        return self._exit

    def stderr_tail(self) -> str:
        return self.live.stderr_tail()

    def failure(self) -> Exception | None:
        if self._end_failure is not None:
            return self._end_failure
        life = self._life
        if life is None or self._done:
            return None
        if life.oom:
            return OutOfMemory(f"sandbox ran out of memory (limit {self._memory_text})")
        if life.exit_code is not None and not self._terminating:
            return SandboxError(
                f"the warm sandbox was stopped from outside (exit code {life.exit_code})",
                hint="something ran 'docker kill', 'docker stop' or 'docker rm -f' on the "
                     "container; run the job again")
        return None

    async def terminate(self) -> None:
        """Interrupt an unfinished turn (kill after 2 s); after the result, nothing to do."""
        with anyio.CancelScope(shield=True):
            if self._ended:
                return
            self._terminating = True
            if self._done:
                await self._end("done")
                return
            if self._dead():
                await self._end("dead")
                return
            outcome = "stuck"
            try:
                await anyio.to_thread.run_sync(self.live.send, INTERRUPT)
                with anyio.move_on_after(INTERRUPT_GRACE):
                    while not self._done and self._output is not None:
                        try:
                            self._split.feed(await self._output.receive())
                        except (anyio.EndOfStream, Exception):
                            break
                if self._done:
                    outcome = "interrupted"
            except (LiveUnavailable, OSError) as exc:
                log.debug("could not interrupt the live turn: %s", exc)
            await self._end(outcome)

    async def _end(self, outcome: str) -> None:
        if self._ended:
            return
        self._ended = True
        self._close_streams()
        try:
            await self._on_end(outcome, self.result)
        except ChannelCoderError as exc:  # e.g. the changes could not be brought back
            self._end_failure = exc
        except Exception:
            log.exception("ending a live turn failed")

    def _close_streams(self) -> None:
        if self._output is not None:
            self._output.close()
        self._stop.set()
        self.live.close()
        if self._life is not None:
            self._life.close()


def _starts_result(line: bytearray) -> bool:
    return bytes(line[:80]).lstrip().startswith(_RESULT)


def exec_line(container_id: str, argv: Sequence[str]) -> str:
    """The `docker exec` form of a live process, for --verbose (secrets redacted)."""
    return redact(f"docker exec -i {container_id[:12]} " + shlex.join(list(argv)))
