"""The egress proxy's route into a container on a remote engine: one exec'd channel.

The container runs `mux.js` (instead of the local forwarder) as its prelude: it listens where
claude's HTTP(S)_PROXY and ANTHROPIC_BASE_URL point and holds each connection until a channel
is there. `EgressChannel.open()` execs `node mux.js --pipe` in the container, whose stdin and
stdout are that channel, and joins every connection the container opens to a new connection
to the local proxy's Unix socket. So the proxy — its allowlist, its credentials, its questions —
stays on this machine, and the remote engine needs no route back to it.
"""

from __future__ import annotations

import contextlib
import logging
import socket
import struct
import threading
from pathlib import Path
from typing import Any

log = logging.getLogger(__name__)

MUX_JS = Path(__file__).with_name("mux.js")
MUX_INSIDE = "/channelcoder/egress-mux.js"
MUX_SOCKET = "/tmp/channelcoder-egress.sock"
PRELUDE = f"node {MUX_INSIDE}"
OPEN, DATA, END, CLOSE, READY = 1, 2, 3, 4, 5
_HEAD = struct.Struct(">BII")


def frame(kind: int, conn: int, payload: bytes = b"") -> bytes:
    return _HEAD.pack(kind, conn, len(payload)) + payload


class EgressChannel:
    """Carries a remote container's proxy connections to the local proxy at `proxy_socket`."""

    def __init__(self, api: Any, container: str, proxy_socket: Path) -> None:
        self.api = api
        self.container = container
        self.proxy_socket = proxy_socket
        self._stream: Any = None
        self._send_lock = threading.Lock()
        self._conns: dict[int, socket.socket] = {}
        self._closed = False
        self.ready = threading.Event()  # the container's end is connected

    def open(self, *, wait: float = 0.0) -> None:
        """Exec the container's end of the channel and start carrying; with `wait`, until
        that end is connected (a turn in a warm container: connections made while no channel
        is there are refused). Blocking."""
        made = self.api.exec_create(self.container, ["node", MUX_INSIDE, "--pipe"],
                                    stdin=True, stdout=True, stderr=True,
                                    environment={"CHANNELCODER_EGRESS_MUX": MUX_SOCKET})
        self._stream = self.api.exec_stream(str(made["Id"]))
        threading.Thread(target=self._read, name="channelcoder-egress-channel",
                         daemon=True).start()
        if wait and not self.ready.wait(wait):
            self.close()
            raise RuntimeError(f"its end in the container did not connect in {wait:.0f} s")

    def _send(self, data: bytes) -> None:
        with self._send_lock:
            if self._stream is not None and not self._closed:
                self._stream.send(data)

    def _read(self) -> None:
        buffered = b""
        try:
            for out, err in self._stream:
                if err:
                    log.debug("egress channel: %s", err.decode("utf-8", "replace").strip())
                if not out:
                    continue
                buffered += out
                while len(buffered) >= _HEAD.size:
                    kind, conn, length = _HEAD.unpack_from(buffered)
                    if len(buffered) < _HEAD.size + length:
                        break
                    payload = buffered[_HEAD.size:_HEAD.size + length]
                    buffered = buffered[_HEAD.size + length:]
                    self._handle(kind, conn, payload)
        except Exception as exc:
            log.debug("the egress channel ended: %r", exc)
        finally:
            self.close()

    def _handle(self, kind: int, conn: int, payload: bytes) -> None:
        if kind == READY:
            self.ready.set()
            return
        if kind == OPEN:
            upstream = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
            try:
                upstream.connect(str(self.proxy_socket))
            except OSError as exc:
                log.warning("the egress proxy does not answer: %s", exc)
                upstream.close()
                self._send(frame(CLOSE, conn))
                return
            self._conns[conn] = upstream
            threading.Thread(target=self._pump, args=(conn, upstream), daemon=True,
                             name="channelcoder-egress-conn").start()
            return
        known = self._conns.get(conn)
        if known is None:
            return
        try:
            if kind == DATA:
                known.sendall(payload)
            elif kind == END:
                known.shutdown(socket.SHUT_WR)
            elif kind == CLOSE:
                self._conns.pop(conn, None)
                known.close()
        except OSError:
            self._drop(conn)

    def _pump(self, conn: int, upstream: socket.socket) -> None:
        """The proxy's answers on one connection, back into the channel."""
        try:
            while True:
                data = upstream.recv(65536)
                if not data:
                    self._send(frame(END, conn))
                    return
                self._send(frame(DATA, conn, data))
        except OSError:
            self._drop(conn)

    def _drop(self, conn: int) -> None:
        upstream = self._conns.pop(conn, None)
        if upstream is not None:
            with contextlib.suppress(OSError):
                upstream.close()
            with contextlib.suppress(Exception):
                self._send(frame(CLOSE, conn))

    def close(self) -> None:
        """Stop carrying (the container's connections are dropped). Idempotent."""
        if self._closed:
            return
        self._closed = True
        for conn in list(self._conns):
            upstream = self._conns.pop(conn, None)
            if upstream is not None:
                with contextlib.suppress(OSError):
                    upstream.close()
        stream, self._stream = self._stream, None
        if stream is not None:
            with contextlib.suppress(Exception):
                stream.close()
