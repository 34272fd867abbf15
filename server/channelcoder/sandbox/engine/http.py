"""HTTP/1.1 to the engine, as much of it as the engine speaks, on any connected socket.

`http.client` would cost its email parser's import on every run. A `Connection` is kept alive
and reused; a `Stream` (attach, events, a non-detached exec) owns its connection, and its
`close()` — from any thread — shuts the socket so a blocked reader returns at once.
"""

from __future__ import annotations

import contextlib
import json
import select
import socket
import threading
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass
from typing import Any, Generic, TypeVar

from .address import TLSFiles

T = TypeVar("T")
STDOUT, STDERR = 1, 2


# ---------------------------------------------------------------------------------------------
# HTTP/1.1, as much of it as the engine speaks (http.client would cost its email parser's import)


class EngineClosed(ConnectionError):
    """The engine closed the connection before a whole response head arrived."""


@dataclass
class Response:
    status: int
    headers: dict[str, str]  # lower-case names
    keep_alive: bool


class Connection:
    """One HTTP/1.1 connection to the engine: requests go out, responses are read in full,
    chunk by chunk, or — after an upgrade — as the raw stream the engine hijacked."""

    def __init__(self, sock: socket.socket) -> None:
        self.sock = sock
        self.reader = sock.makefile("rb")

    def request(self, method: str, url: str, body: bytes | None = None,
                headers: Mapping[str, str] | None = None) -> Response:
        head = [f"{method} {url} HTTP/1.1", "Host: docker", "User-Agent: channelcoder"]
        head += [f"{name}: {value}" for name, value in (headers or {}).items()]
        if body is not None or method in ("POST", "PUT"):
            head.append(f"Content-Length: {len(body or b'')}")
        self.sock.sendall(("\r\n".join(head) + "\r\n\r\n").encode("latin-1") + (body or b""))
        return self._head()

    def _head(self) -> Response:
        line = self.reader.readline(65537)
        if not line:
            raise EngineClosed("the engine closed the connection")
        parts = line.split(None, 2)
        if len(parts) < 2 or not parts[0].startswith(b"HTTP/") or not parts[1].isdigit():
            raise EngineClosed(f"the engine sent {line[:40]!r}, not an HTTP response")
        headers: dict[str, str] = {}
        while True:
            field = self.reader.readline(65537)
            if field in (b"\r\n", b"\n"):
                break
            if not field:
                raise EngineClosed("the engine closed the connection mid-response")
            name, _, value = field.decode("latin-1").partition(":")
            headers[name.strip().lower()] = value.strip()
        status = int(parts[1])
        framed = "content-length" in headers or self.chunked(headers) or status in (204, 304)
        keep_alive = (parts[0] == b"HTTP/1.1" and framed
                      and "close" not in headers.get("connection", "").lower())
        return Response(status, headers, keep_alive)

    @staticmethod
    def chunked(headers: Mapping[str, str]) -> bool:
        return "chunked" in headers.get("transfer-encoding", "").lower()

    def body(self, response: Response) -> bytes:
        if response.status in (204, 304) or 100 <= response.status < 200:
            return b""
        if self.chunked(response.headers):
            return b"".join(self.chunks())
        if "content-length" in response.headers:
            size = int(response.headers["content-length"])
            data = _read_exact(self.reader.read, size)
            if len(data) < size:
                raise EngineClosed("the engine closed the connection mid-response")
            return data
        return self.reader.read()

    def chunks(self) -> Iterator[bytes]:
        """A chunked body, chunk by chunk (blocking until each arrives)."""
        while True:
            size_line = self.reader.readline(1024)
            if not size_line:
                return
            try:
                size = int(size_line.split(b";")[0].strip() or b"0", 16)
            except ValueError:
                raise EngineClosed(f"the engine sent {size_line[:40]!r} as a chunk size") from None
            if size == 0:
                while self.reader.readline(65537) not in (b"\r\n", b"\n", b""):
                    pass
                return
            data = _read_exact(self.reader.read, size)
            self.reader.readline(8)
            if len(data) < size:
                return
            yield data

    def usable(self) -> bool:
        """Idle and still open: nothing to read (a closed socket reads as ready, with EOF)."""
        poller = select.poll()  # not select(): a busy process may hold fds past FD_SETSIZE
        poller.register(self.sock, select.POLLIN)
        return not poller.poll(0)

    def shutdown(self) -> None:
        with contextlib.suppress(OSError):
            self.sock.shutdown(socket.SHUT_RDWR)

    def close(self) -> None:
        with contextlib.suppress(OSError):
            self.reader.close()
        with contextlib.suppress(OSError):
            self.sock.close()


def ssl_context(tls: TLSFiles) -> Any:
    import ssl

    if tls.verify:
        context = ssl.create_default_context(cafile=str(tls.ca) if tls.ca else None)
    else:
        context = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
        context.check_hostname = False
        context.verify_mode = ssl.CERT_NONE
    if tls.cert is not None and tls.key is not None:
        context.load_cert_chain(str(tls.cert), str(tls.key))
    return context


# ---------------------------------------------------------------------------------------------
# Streams


class Stream(Generic[T]):
    """Items read from a connection of their own; `close()` from any thread ends them."""

    def __init__(self, connection: Connection, items: Iterator[T]) -> None:
        self._connection = connection
        self._items = items

    def __iter__(self) -> Iterator[T]:
        return self

    def __next__(self) -> T:
        return next(self._items)

    def send(self, data: bytes) -> None:
        """Write to the stream's stdin (an attach or exec made with stdin)."""
        self._connection.sock.sendall(data)

    def close(self) -> None:
        self._connection.shutdown()
        self._connection.close()

    def close_when_done(self, limit: float = 3.0) -> None:
        """Close once the far end has ended it (what was sent has arrived and was acted on),
        or after `limit` seconds: closing at once can lose what is still on its way — through
        an ssh:// engine, closing ends the ssh process that carries it."""
        def drain() -> None:
            with contextlib.suppress(Exception):
                for _ in self._items:
                    pass

        drained = threading.Thread(target=drain, name="channelcoder-drain", daemon=True)
        drained.start()
        drained.join(limit)
        self.close()


def _read_exact(read: Callable[[int], bytes], size: int) -> bytes:
    chunks: list[bytes] = []
    left = size
    while left > 0:
        chunk = read(left)
        if not chunk:
            break
        chunks.append(chunk)
        left -= len(chunk)
    return b"".join(chunks)


def read_frames(read: Callable[[int], bytes]) -> Iterator[tuple[int, bytes]]:
    """The engine's multiplexed stdout/stderr stream (no TTY): (stream, payload) per frame."""
    while True:
        try:
            header = _read_exact(read, 8)
            if len(header) < 8:
                return
            payload = _read_exact(read, int.from_bytes(header[4:8], "big"))
        except (OSError, ValueError):
            return
        yield header[0], payload


def split_frames(data: bytes) -> Iterator[tuple[int, bytes]]:
    """`read_frames` over bytes already read (a finished `logs`)."""
    offset = 0

    def read(size: int) -> bytes:
        nonlocal offset
        chunk = data[offset:offset + size]
        offset += len(chunk)
        return chunk

    return read_frames(read)


def demux(frames: Iterator[tuple[int, bytes]]) -> Iterator[tuple[bytes | None, bytes | None]]:
    for kind, payload in frames:
        if kind == STDERR:
            yield None, payload
        elif kind == STDOUT:
            yield payload, None


def json_lines(chunks: Iterator[bytes]) -> Iterator[dict[str, Any]]:
    """One JSON object per line, however the lines are split into chunks."""
    pending = b""
    try:
        for chunk in chunks:
            pending += chunk
            *lines, pending = pending.split(b"\n")
            for line in lines:
                if line.strip():
                    with contextlib.suppress(ValueError):
                        item = json.loads(line)
                        if isinstance(item, dict):
                            yield item
    except (OSError, ValueError):
        return


