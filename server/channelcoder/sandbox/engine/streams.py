"""A blocking iterator (docker-py's attach or build stream) read by a thread, consumed async.

`ThreadedIterator.receive()` is cancellation-safe: the thread hands items over through an
anyio memory object stream, so a cancelled `receive()` loses nothing. The thread is a plain
daemon thread, not a worker from anyio's shared limiter, because it lives as long as the
stream. `close()` (from the event loop thread) stops it: it closes the source, which unblocks a
blocked socket read, and the channel.
"""

from __future__ import annotations

import contextlib
import threading
from collections.abc import Callable, Iterable
from typing import Generic, TypeVar

import anyio
import anyio.from_thread
import anyio.lowlevel
from anyio.streams.memory import MemoryObjectReceiveStream, MemoryObjectSendStream

T = TypeVar("T")


class ThreadedIterator(Generic[T]):
    def __init__(self, source: Iterable[T], *, close_source: Callable[[], None] | None = None,
                 buffer: int = 256, name: str = "channelcoder-stream") -> None:
        self._source = source
        self._close_source = close_source
        self._send: MemoryObjectSendStream[T]
        self._receive: MemoryObjectReceiveStream[T]
        self._send, self._receive = anyio.create_memory_object_stream[T](buffer)
        self._error: BaseException | None = None
        self._closed = False
        self._name = name
        self._thread: threading.Thread | None = None

    def start(self) -> None:
        """Start reading. Call from the event loop thread that will consume the items."""
        token = anyio.lowlevel.current_token()
        self._thread = threading.Thread(target=self._pump, args=(token,), name=self._name,
                                        daemon=True)
        self._thread.start()

    def _pump(self, token: anyio.lowlevel.EventLoopToken) -> None:
        try:
            for item in self._source:
                anyio.from_thread.run(self._send.send, item, token=token)
        except (anyio.BrokenResourceError, anyio.ClosedResourceError, anyio.RunFinishedError):
            return
        except BaseException as exc:
            if not self._closed:
                self._error = exc
        finally:
            with contextlib.suppress(Exception):
                anyio.from_thread.run_sync(self._send.close, token=token)

    async def receive(self) -> T:
        """The next item. Raises anyio.EndOfStream at the end, or what the source raised."""
        try:
            return await self._receive.receive()
        except (anyio.EndOfStream, anyio.ClosedResourceError):
            if self._error is not None:
                raise self._error from None
            raise anyio.EndOfStream from None

    def close(self) -> None:
        """Stop reading and drop what is buffered. Idempotent; call from the loop thread."""
        if self._closed:
            return
        self._closed = True
        if self._close_source is not None:
            with contextlib.suppress(Exception):
                self._close_source()
        with contextlib.suppress(Exception):
            self._receive.close()

    def join(self, timeout: float | None = None) -> None:
        if self._thread is not None:
            self._thread.join(timeout)
