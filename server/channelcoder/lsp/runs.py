"""The server's jobs: each runs in its own task, with progress, events, a queue slot, a reply.

`Runs.start()` never waits: the progress `begin` goes out before the job waits for anything
(a free slot, the image, the container). The command that started a job awaits `run.done` and
replies with `run.reply`. Domain work stays in `jobs.Job`; this module only drives it.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol

import anyio
from lsprotocol import types

from ..backend_choice import StandbySource
from ..claude.events import (
    AnyEvent,
    Changes,
    Error,
    Result,
    SecurityEvent,
    Status,
    Text,
    TextDelta,
)
from ..jobs import Job, JobState
from ..redact import redact
from .describe import Describer, end_message
from .progress import JobProgress
from .proposal_store import Proposal

if TYPE_CHECKING:
    from .server import ChannelCoderServer

log = logging.getLogger(__name__)

EVENT_NOTIFICATION = "channelcoder/event"
CLOSE_TIMEOUT = 10.0
KEEP_FINISHED = 100  # finished jobs listed by channelcoder.jobs (older ones are forgotten)


class StandbyProvider(StandbySource, Protocol):
    """A warm sandbox ready before the first job.

    The server calls `start()` after `initialized` and whenever the settings change (it must
    return at once and prepare in the background), `stop()` when the setting goes off, jobs ask
    `take()` before every cold start, and the server awaits `aclose()` on shutdown.
    """

    def start(self, workspace: Path, layer: Mapping[str, Any]) -> None: ...

    def stop(self) -> None: ...

    def describe(self) -> dict[str, Any]: ...

    async def aclose(self) -> None: ...


@dataclass(eq=False)
class LspJob:
    job: Job
    kind: str
    title: str
    workspace: Path
    uri: str | None = None
    token: types.ProgressToken | None = None
    create_token: bool = False
    prompt: str = ""
    bound: bool = False  # a command awaits it (and offers its proposal after replying)
    auto_session: bool = False
    versions: dict[str, int] = field(default_factory=dict)
    flags: dict[str, Any] = field(default_factory=dict)
    done: asyncio.Event = field(default_factory=asyncio.Event)
    reply: dict[str, Any] | None = None
    proposal: Proposal | None = None
    task: asyncio.Task[None] | None = None
    _queue_scope: anyio.CancelScope | None = None
    cancel_requested: bool = False

    @property
    def id(self) -> str:
        return self.job.id

    @property
    def active(self) -> bool:
        return not self.done.is_set()

    def cancel(self) -> bool:
        """Ask the job to stop; False when it had already ended."""
        if not self.active:
            return False
        self.cancel_requested = True
        if self._queue_scope is not None:
            self._queue_scope.cancel()
        self.job.cancel()
        return True

    def info(self) -> dict[str, Any]:
        summary = self.job.summary()
        state = summary["state"]
        if self.active and self._queue_scope is not None:
            state = JobState.QUEUED.value
        reply = self.reply or {}
        return {**summary, "state": state, "kind": self.kind, "uri": self.uri,
                "progressToken": self.token, "proposalId": reply.get("proposalId"),
                "ok": reply.get("ok"), "error": reply.get("error")}


class Runs:
    def __init__(self, server: ChannelCoderServer) -> None:
        self._server = server
        self.jobs: dict[str, LspJob] = {}
        self.limiter = anyio.CapacityLimiter(2)

    def set_max_jobs(self, count: int) -> None:
        if count != self.limiter.total_tokens:
            self.limiter.total_tokens = count

    def start(self, run: LspJob) -> None:
        if run.id in self.jobs:
            raise ValueError(f"job id {run.id} is in use")
        self.jobs[run.id] = run
        finished = [job_id for job_id, job in self.jobs.items() if not job.active]
        for job_id in finished[: max(0, len(finished) - KEEP_FINISHED)]:
            del self.jobs[job_id]
        log.info("job %s (%s) starts: %s", run.id, run.kind, run.title)
        run.task = asyncio.get_running_loop().create_task(self._drive(run), name=f"job-{run.id}")

    def find(self, job_id: str) -> LspJob | None:
        return self.jobs.get(job_id)

    def newest_active(self) -> LspJob | None:
        active = [run for run in self.jobs.values() if run.active]
        return active[-1] if active else None

    def listing(self) -> list[dict[str, Any]]:
        return [run.info() for run in reversed(self.jobs.values())]

    async def close(self, limit: float = CLOSE_TIMEOUT) -> None:
        """Cancel every job and wait (bounded) until each has cleaned up."""
        pending = [run for run in self.jobs.values() if run.active]
        for run in pending:
            run.cancel()
        tasks = [run.task for run in pending if run.task is not None]
        if tasks:
            _, still = await asyncio.wait(tasks, timeout=limit)
            for task in still:
                log.warning("job task %s did not end in %.0f s", task.get_name(), limit)

    # -- one job -------------------------------------------------------------------------------

    async def _drive(self, run: LspJob) -> None:
        progress = JobProgress(self._server, run.token, create=run.create_token, title=run.title)
        try:
            async with progress:
                self._emit(run, Status("queued", "waiting for a free job slot"))
                acquired = await self._acquire(run)
                try:
                    describer = Describer()
                    async for event in run.job.events():
                        log.debug("job %s: %s", run.id, event)
                        self._emit(run, event)
                        message = describer.message(event)
                        if message:
                            progress.report(message)
                finally:
                    if acquired:
                        self.limiter.release_on_behalf_of(run)
                job = run.job
                changed = len(job.changes.files) if job.changes else 0
                progress.end_message = end_message(job.result, job.error, job.elapsed(), changed)
            await self._server.offers.keep(run)
        except Exception:
            log.exception("job %s: the language server failed while driving it", run.id)
        finally:
            run.reply = self._reply(run)
            run.done.set()
            log.info("job %s ended: ok=%s error=%s", run.id, run.reply["ok"], run.reply["error"])
        await self._server.announce(run)

    async def _acquire(self, run: LspJob) -> bool:
        with anyio.CancelScope() as scope:
            run._queue_scope = scope
            if run.cancel_requested:
                scope.cancel()
            await self.limiter.acquire_on_behalf_of(run)
            run._queue_scope = None
            return True
        run._queue_scope = None
        return False

    def _emit(self, run: LspJob, event: AnyEvent) -> None:
        if isinstance(event, SecurityEvent):
            self._server.show(types.MessageType.Warning,
                              f"Security, in Claude's sandbox: {event.describe()}")
        if isinstance(event, Result) and event.runs_on_host and run.job.changes is None:
            listed = ", ".join(f"{c.path} ({c.reason})" for c in event.runs_on_host)
            self._server.show(types.MessageType.Warning, "Claude changed files that run on your "
                              f"machine: {listed} — review them before you run them")
        if not self._server.settings.server.stream_events:
            return
        payload = event.to_json()
        if not isinstance(event, TextDelta | Text | Changes):  # tool output may echo a secret
            payload = _redacted(payload)
        try:
            self._server.protocol.notify(EVENT_NOTIFICATION, {"jobId": run.id, "event": payload})
        except Exception as exc:  # the client went away; the job still ends properly
            log.debug("could not send an event: %s", exc)

    def _reply(self, run: LspJob) -> dict[str, Any]:
        job = run.job
        result: Result | None = job.result
        error: Error | None = job.error
        if result is None and error is None:
            error = Error("cancelled", "the job was cancelled")
        changes: Changes | None = job.changes
        root = run.workspace
        host_run = {c.path: c.reason for c in job.runs_on_host}
        files = [{"path": f.path, "uri": _uri(root, f.path), "status": f.status,
                  "oldPath": f.old_path, "binary": f.binary, "modeChanged": f.mode_changed,
                  **({"runsOnHost": host_run[f.path]} if f.path in host_run else {})}
                 for f in (changes.files if changes else ())]
        if error is not None:
            failure: dict[str, Any] | None = {"code": error.code, "message": error.message,
                                              "hint": error.hint}
        elif result is not None and not result.ok:
            failure = {"code": "claude-failed", "message": result.error or "claude failed",
                       "hint": result.hint}
        else:
            failure = None
        elapsed_ms = int(job.elapsed() * 1000)
        return {
            "jobId": run.id,
            "proposalId": run.proposal.job_id if run.proposal else None,
            "ok": failure is None,
            "text": result.text if result else "",
            "sessionId": job.session_id,
            "costUsd": result.cost_usd if result else 0.0,
            "durationMs": (result.duration_ms or elapsed_ms) if result else elapsed_ms,
            "numTurns": result.num_turns if result else 0,
            "changes": files,
            "security": [event.to_json() for event in job.security_events],
            "runsOnHost": [{"path": c.path, "reason": c.reason} for c in job.runs_on_host],
            "error": failure,
        }


def _redacted(value: Any) -> Any:
    if isinstance(value, str):
        return redact(value)
    if isinstance(value, dict):
        return {key: _redacted(item) for key, item in value.items()}
    if isinstance(value, list):
        return [_redacted(item) for item in value]
    return value


def _uri(root: Path, path: str) -> str:
    target = Path(path)
    return (target if target.is_absolute() else root / target).as_uri()

