"""One request = one Job: prepare the workspace, pick a backend, run, stream events, collect.

`Job.events()` is an async generator that never holds a task group or cancel scope across a
`yield`, so it is safe to abandon (break out of) from any consumer. Every stream ends with
exactly one `Result` or `Error`. `Job.cancel()` may be called from any task on the same loop.
"""

from __future__ import annotations

import dataclasses
import enum
import logging
import os
import time
from collections import deque
from collections.abc import AsyncGenerator, AsyncIterator
from typing import TYPE_CHECKING, Any, TypeVar

import anyio

from .backend import Backend, ClaudeProcess
from .backend_choice import StandbySource, choose_backend
from .claude.events import (
    AnyEvent,
    ApiRetry,
    Changes,
    Error,
    HostRunChange,
    NetworkBlocked,
    Result,
    SecurityEvent,
    Status,
    Text,
    TextDelta,
)
from .claude.parse import StreamParser
from .errors import (
    AuthenticationFailed,
    Cancelled,
    ChannelCoderError,
    ClaudeFailed,
    IdleTimeout,
    TimedOut,
    UsageError,
)
from .launch import LaunchSpec, PreparedLaunch, build_launch
from .request import Request
from .workspace.workplace import AfterJob, Workplace

if TYPE_CHECKING:
    from .sessions import SessionTurn

log = logging.getLogger(__name__)
T = TypeVar("T")


class JobState(enum.StrEnum):
    QUEUED = "queued"
    RUNNING = "running"
    SUCCEEDED = "succeeded"
    FAILED = "failed"
    CANCELLED = "cancelled"


class Job:
    """`backend`: one chosen by the caller (a CLI run's head start, a test's); else
    `backend_choice.choose_backend` picks it, offered `standby`'s ready sandbox."""

    def __init__(self, request: Request, *, backend: Backend | None = None,
                 standby: StandbySource | None = None) -> None:
        if not request.prompt or not request.prompt.strip():
            raise UsageError("the prompt is empty", hint="say what Claude should do")
        self.request = request
        self.id = request.job_id or os.urandom(6).hex()
        self.state = JobState.QUEUED
        self.phase = "queued"
        self.created = time.time()
        self.started: float | None = None
        self.ended: float | None = None
        self.result: Result | None = None
        self.error: Error | None = None
        self.changes: Changes | None = None
        self.security_events: list[SecurityEvent] = []
        self.runs_on_host: list[HostRunChange] = []
        self._blocked: deque[NetworkBlocked] = deque()  # appended from the proxy's thread
        self.session_id: str | None = None
        self.text_parts: list[str] = []
        self._backend = backend
        self._standby = standby
        self._cancel_requested = False
        self._scope: anyio.CancelScope | None = None

    # -- control ---------------------------------------------------------------------------

    def cancel(self) -> None:
        """Stop the job as soon as possible; its stream then ends with Error('cancelled')."""
        self._cancel_requested = True
        if self._scope is not None:
            self._scope.cancel()

    @property
    def done(self) -> bool:
        return self.state in (JobState.SUCCEEDED, JobState.FAILED, JobState.CANCELLED)

    def elapsed(self) -> float:
        if self.started is None:
            return 0.0
        return (self.ended or time.time()) - self.started

    def summary(self) -> dict[str, Any]:
        return {
            "jobId": self.id,
            "state": self.state.value,
            "phase": self.phase,
            "elapsed": round(self.elapsed(), 3),
            "session": self.request.options.session,
            "sessionId": self.session_id,
            "prompt": self.request.prompt[:200],
        }

    async def run(self) -> Result:
        """Run to the end and return the Result; a failure raises its ChannelCoderError."""
        final: AnyEvent | None = None
        async for event in self.events():
            final = event
        if isinstance(final, Error):
            raise error_from_event(final)
        assert isinstance(final, Result)
        return final

    # -- the stream ------------------------------------------------------------------------

    async def events(self) -> AsyncGenerator[AnyEvent, None]:
        self.state = JobState.RUNNING
        self.started = time.time()
        deadline = time.monotonic() + self.request.options.timeout
        process: ClaudeProcess | None = None
        workplace: Workplace | None = None
        turn: SessionTurn | None = None
        backend: Backend | None = None
        try:
            if self.request.options.session:
                from .sessions import SessionTurn

                turn = await self._guard(SessionTurn.begin(self.request.options.session,
                                                           self.request.workspace.resolve()),
                                         deadline)
            backend = self._backend or choose_backend(
                self.request, saved_session=turn is not None and turn.state.saved,
                standby=self._standby)
            for status in self._workplace_status():
                yield self._note(status)
            workplace = await self._guard(self._prepare_workplace(turn, backend), deadline)
            for checked in self._checked(workplace.before_job):
                yield self._note(checked)
            spec = await anyio.to_thread.run_sync(self.launch_spec, workplace, turn)
            prepared: PreparedLaunch | None = None
            async for item in self._guarded_iter(backend.prepare(spec), deadline):
                if isinstance(item, PreparedLaunch):
                    prepared = item
                else:
                    yield self._note(item)
            if prepared is None:
                raise RuntimeError(f"{type(backend).__name__}.prepare() prepared no launch")
            where = " in the sandbox" if self.request.options.docker is not None else ""
            yield self._note(Status("running", f"starting claude{where}"))
            process = await self._guard(backend.start(prepared), deadline)
            if self.request.options.verbose:
                yield self._note(Status("running", process.command_line))
            result: Result | None = None
            async for event in self._read(process, deadline):
                if isinstance(event, Result):
                    result = event
                elif isinstance(event, ApiRetry):
                    if event.status in (401, 403):
                        raise AuthenticationFailed(
                            f"the API refused the credentials ({event.status}"
                            f"{' ' + event.error if event.error else ''})",
                            hint=AuthenticationFailed.default_hint)
                    yield self._note(Status("retrying", event.describe()))
                else:
                    yield self._note(event)
            code = await self._guard(process.wait(), deadline)
            final = self._finish(result, code, process)
            if isinstance(final, Result) and workplace.collect is not None:
                yield self._note(Status("collecting-changes", "collecting changes"))
                changes = await anyio.to_thread.run_sync(workplace.collect)
                if changes is not None:
                    self.changes = changes
                    yield changes
            for checked in await self._after_job(workplace):
                yield self._note(checked)
            notice = await self._release(workplace)
            if notice:
                yield self._note(Status("collecting-changes", notice))
            if turn is not None:
                if isinstance(final, Result):
                    await anyio.to_thread.run_sync(self._record, turn, final, workplace)
                turn.release()  # before the last yield: a consumer may stop reading there
            if isinstance(final, Result) and self.runs_on_host:
                final = dataclasses.replace(final, runs_on_host=tuple(self.runs_on_host))
            yield self._note(final)
        except ChannelCoderError as exc:
            if process is not None:
                await process.terminate()
            if workplace is not None and process is not None:
                for checked in await self._after_job(workplace):
                    yield self._note(checked)
            yield self._note(self._error_event(exc))
        except Exception as exc:  # a bug must still end the stream properly
            log.exception("job %s failed unexpectedly", self.id)
            if process is not None:
                await process.terminate()
            yield self._note(Error("internal", f"internal error: {exc}",
                                   "please report this with the log file"))
        finally:
            if process is not None:
                await process.terminate()
            if workplace is not None:
                await self._release(workplace)
            if turn is not None:
                turn.release()
            if backend is not None:
                backend.release()
            if not self.done:
                self.state = JobState.CANCELLED
                self.ended = time.time()

    def _note(self, event: AnyEvent) -> AnyEvent:
        """Keep the job's own view of its progress current."""
        if isinstance(event, Status):
            self.phase = event.phase
        elif isinstance(event, TextDelta):
            pass
        elif isinstance(event, Text):
            self.text_parts.append(event.text)
        elif isinstance(event, Result):
            self.result = event
            self.session_id = event.session_id or self.session_id
            self.state = JobState.SUCCEEDED if event.ok else JobState.FAILED
            self.ended = time.time()
        elif isinstance(event, Error):
            self.error = event
            self.state = JobState.CANCELLED if event.code == "cancelled" else JobState.FAILED
            self.ended = time.time()
        return event

    def _error_event(self, exc: ChannelCoderError) -> Error:
        if self._cancel_requested and not isinstance(exc, Cancelled):
            exc = Cancelled("the job was cancelled")
        return Error(exc.code, exc.message, exc.hint)

    # -- stages ----------------------------------------------------------------------------

    async def _prepare_workplace(self, turn: SessionTurn | None = None,
                                 backend: Backend | None = None) -> Workplace:
        """The session's snapshot, else one the backend has ready (a standby's), else new."""
        from .workspace import prepare_workplace

        snapshot = (turn.snapshot if turn else None) or (backend.snapshot_id if backend else None)
        return await prepare_workplace(self.request, self.id, snapshot_id=snapshot)

    def _workplace_status(self) -> list[Status]:
        options = self.request.options
        out = []
        if options.worktree is not None:
            out.append(Status("preparing-worktree", f"worktree {options.worktree.branch}"))
        if options.apply == "propose":
            out.append(Status("preparing-snapshot", "snapshot of the workspace"))
        return out

    async def _after_job(self, workplace: Workplace) -> list[SecurityEvent | Status]:
        """The host-side check after the job's process ended (once; shielded)."""
        check, workplace.after_job = workplace.after_job, None
        if check is None:
            return []
        try:
            with anyio.CancelScope(shield=True):
                found = await anyio.to_thread.run_sync(check)
        except ChannelCoderError as exc:
            return [Status("collecting-changes", f"notice: {exc.describe()}")]
        return self._checked(found)

    def _checked(self, found: AfterJob) -> list[SecurityEvent | Status]:
        self.security_events += found.events
        self.runs_on_host += found.runs_on_host
        return [*found.events,
                *(Status("collecting-changes", f"notice: {n}") for n in found.notices)]

    async def _release(self, workplace: Workplace) -> str | None:
        """Run the workplace's clean-up once, off the event loop, shielded from cancellation."""
        release, workplace.release = workplace.release, None
        if release is None:
            return None
        try:
            with anyio.CancelScope(shield=True):
                notice: str | None = await anyio.to_thread.run_sync(release)
        except ChannelCoderError as exc:
            notice = exc.describe()
        return notice

    def _record(self, turn: SessionTurn, result: Result, workplace: Workplace) -> None:
        self.session_id = result.session_id or self.session_id
        turn.record(prompt=self.request.prompt, options=self.request.options,
                    workspace=self.request.workspace.resolve(), cwd=workplace.cwd,
                    session_id=result.session_id or None, text=result.text, ok=result.ok,
                    cost_usd=result.cost_usd, error=result.error,
                    snapshot=workplace.ref if workplace.kind == "snapshot" else None)

    def launch_spec(self, workplace: Workplace, turn: SessionTurn | None = None) -> LaunchSpec:
        """The claude run this job asks its backend for, in `workplace` (blocking)."""
        spec = build_launch(self.request.options, self.request.prompt,
                            workspace=self.request.workspace, cwd=workplace.cwd, job_id=self.id,
                            env=self.request.env, resume=turn.resume_id if turn else None,
                            mounts=workplace.mounts)
        spec.on_blocked = self._blocked.append
        spec.ask_network = self.request.ask_network
        return spec

    def _blocked_events(self) -> list[NetworkBlocked]:
        """What the egress proxy refused since the last look (it reports from its thread)."""
        found: list[NetworkBlocked] = []
        while self._blocked:
            found.append(self._blocked.popleft())
        return found

    async def _read(self, process: ClaudeProcess, deadline: float) -> AsyncIterator[AnyEvent]:
        parser = StreamParser()
        idle = self.request.options.idle_timeout
        while True:
            now = time.monotonic()
            idle_deadline = now + idle
            with anyio.CancelScope(deadline=min(deadline, idle_deadline)) as scope:
                self._scope = scope
                if self._cancel_requested:
                    scope.cancel()
                chunk = await process.read()
            self._scope = None
            if scope.cancelled_caught:
                await process.terminate()
                raise self._interruption(deadline)
            if not chunk:
                break
            for event in parser.feed(chunk):
                yield event
            for blocked in self._blocked_events():
                yield blocked
        for event in parser.close():
            yield event
        for blocked in self._blocked_events():
            yield blocked

    def _interruption(self, deadline: float) -> ChannelCoderError:
        options = self.request.options
        if self._cancel_requested:
            return Cancelled("the job was cancelled")
        if time.monotonic() >= deadline - 0.05:
            return TimedOut(f"the job did not finish within its {options.timeout:g} s limit")
        return IdleTimeout(f"claude printed nothing for {options.idle_timeout:g} s")

    async def _guard(self, awaitable: Any, deadline: float) -> Any:
        """Await a stage under the job's deadline and cancellation."""
        with anyio.CancelScope(deadline=deadline) as scope:
            self._scope = scope
            if self._cancel_requested:
                scope.cancel()
            value = await awaitable
            self._scope = None
            return value
        self._scope = None
        raise self._interruption(deadline)

    async def _guarded_iter(self, source: AsyncGenerator[T, None],
                            deadline: float) -> AsyncIterator[T]:
        iterator = source
        try:
            while True:
                with anyio.CancelScope(deadline=deadline) as scope:
                    self._scope = scope
                    if self._cancel_requested:
                        scope.cancel()
                    try:
                        item = await anext(iterator)
                    except StopAsyncIteration:
                        self._scope = None
                        return
                self._scope = None
                if scope.cancelled_caught:
                    raise self._interruption(deadline)
                yield item
        finally:
            with anyio.CancelScope(shield=True):
                await iterator.aclose()

    def _finish(self, result: Result | None, code: int,
                process: ClaudeProcess) -> Result | Error:
        failure = process.failure()
        if isinstance(failure, ChannelCoderError):
            return self._error_event(failure)
        if self._cancel_requested:
            return Error("cancelled", "the job was cancelled")
        if result is None:
            stderr = process.stderr_tail()
            detail = f":\n{stderr}" if stderr else " (no output on stderr)"
            exc = ClaudeFailed(f"claude exited with code {code} without a result{detail}",
                               hint=_hint_for_stderr(stderr))
            return self._error_event(exc)
        ok = result.ok and code == 0
        error, hint = result.error, result.hint
        if not ok and error is None:
            error = f"claude exited with code {code}"
        if not ok and _looks_like_auth_failure(result):
            error = f"authentication failed: {error}"
            hint = AuthenticationFailed.default_hint
        return dataclasses.replace(result, ok=ok, exit_code=code, error=error, hint=hint)


def _hint_for_stderr(stderr: str) -> str:
    if "root/sudo" in stderr:
        return ("bypassPermissions is refused as root outside a sandbox: use --docker, or allow "
                "the tools the job needs with --tools (e.g. --tools Read,Edit,Bash)")
    return "run with --verbose to see the command line"


def _looks_like_auth_failure(result: Result) -> bool:
    if result.api_error_status in (401, 403):
        return True
    text = f"{result.error or ''} {result.text}".lower()
    return any(word in text for word in ("invalid api key", "not logged in", "/login"))


def error_from_event(event: Error) -> ChannelCoderError:
    for cls in _all_errors(ChannelCoderError):
        if cls.code == event.code:
            return cls(event.message, event.hint)
    return ChannelCoderError(event.message, event.hint)


def _all_errors(cls: type[ChannelCoderError]) -> list[type[ChannelCoderError]]:
    out = [cls]
    for sub in cls.__subclasses__():
        out += _all_errors(sub)
    return out

