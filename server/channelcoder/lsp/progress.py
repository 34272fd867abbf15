"""Work-done progress for one job: create → begin → report (coalesced) → end, always ended.

`JobProgress` is an async context manager. Without a token (the client neither passed one nor
supports `window.workDoneProgress`) every call is a no-op. Reports are coalesced to at most one
per `interval` seconds; the latest message always gets through (a timer flushes it).
"""

from __future__ import annotations

import asyncio
import logging
import time
from types import TracebackType
from typing import TYPE_CHECKING

from lsprotocol import types

from ..redact import redact

if TYPE_CHECKING:
    from pygls.lsp.server import LanguageServer

log = logging.getLogger(__name__)

MAX_REPORTS_PER_SECOND = 10
CREATE_TIMEOUT = 10.0


class JobProgress:
    def __init__(self, server: LanguageServer, token: types.ProgressToken | None, *,
                 create: bool, title: str, interval: float = 1.0 / MAX_REPORTS_PER_SECOND) -> None:
        self._server = server
        self.token = token
        self._create = create
        self._title = title
        self._interval = interval
        self._last_sent = 0.0
        self._pending: str | None = None
        self._timer: asyncio.TimerHandle | None = None
        self._open = False
        self.end_message = ""
        self.sent_reports = 0

    async def __aenter__(self) -> JobProgress:
        if self.token is None:
            return self
        if self._create:
            try:
                await asyncio.wait_for(
                    self._server.work_done_progress.create_async(self.token), CREATE_TIMEOUT)
            except Exception as exc:  # a client that refuses or never answers: no progress
                log.warning("the client did not create progress token %s: %s", self.token, exc)
                self.token = None
                return self
        self._server.work_done_progress.begin(self.token, types.WorkDoneProgressBegin(
            title=self._title, cancellable=True, message="queued"))
        self._open = True
        return self

    def report(self, message: str) -> None:
        """Show `message` now, or as soon as the rate limit allows (replacing older ones)."""
        if not self._open or not message:
            return
        self._pending = message
        now = time.monotonic()
        if now - self._last_sent >= self._interval and self._timer is None:
            self._flush()
        elif self._timer is None:
            delay = max(0.0, self._interval - (now - self._last_sent))
            self._timer = asyncio.get_running_loop().call_later(delay, self._flush)

    def _flush(self) -> None:
        self._timer = None
        if not self._open or self._pending is None or self.token is None:
            return
        message, self._pending = self._pending, None
        self._last_sent = time.monotonic()
        self.sent_reports += 1
        try:
            self._server.work_done_progress.report(
                self.token, types.WorkDoneProgressReport(message=redact(message)))
        except Exception as exc:  # a closed connection must not break the job
            log.debug("progress report failed: %s", exc)

    async def __aexit__(self, exc_type: type[BaseException] | None,
                        exc: BaseException | None, tb: TracebackType | None) -> None:
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
        if not self._open or self.token is None:
            return
        self._open = False
        message = self.end_message or ("cancelled" if exc_type is not None else "done")
        try:
            self._server.work_done_progress.end(self.token, types.WorkDoneProgressEnd(
                message=redact(message)))
        except Exception as error:
            log.debug("progress end failed: %s", error)
        self._server.work_done_progress.tokens.pop(self.token, None)
