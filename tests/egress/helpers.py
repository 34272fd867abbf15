"""Loopback peers for the egress proxy's tests: an echo server, a raw HTTP client, a token endpoint."""

from __future__ import annotations

import contextlib
import json
import threading
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import anyio
import anyio.abc
import h11

from channelcoder.claude.events import NetworkBlocked


@dataclass
class Echo:
    """A TCP server on 127.0.0.1 that sends back what it receives, and counts its clients."""

    port: int = 0
    accepted: int = 0


@contextlib.asynccontextmanager
async def echo_server() -> AsyncIterator[Echo]:
    echo = Echo()
    listener = await anyio.create_tcp_listener(local_host="127.0.0.1", local_port=0)
    echo.port = int(listener.extra(anyio.abc.SocketAttribute.local_port))

    async def serve(stream: anyio.abc.SocketStream) -> None:
        echo.accepted += 1
        async with stream:
            with contextlib.suppress(anyio.EndOfStream, anyio.BrokenResourceError):
                while True:
                    await stream.send(await stream.receive())

    async with anyio.create_task_group() as group:
        group.start_soon(listener.serve, serve)
        try:
            yield echo
        finally:
            group.cancel_scope.cancel()


@dataclass
class Reply:
    status: int
    headers: dict[str, str]
    body: bytes
    stream: anyio.abc.SocketStream


async def request(port: int, head: bytes, body: bytes = b"", *,
                  stream: anyio.abc.SocketStream | None = None) -> Reply:
    """Send raw request bytes to the proxy on 127.0.0.1:port; read one response (h11)."""
    if stream is None:
        stream = await anyio.connect_tcp("127.0.0.1", port)
    await stream.send(head + body)
    conn = h11.Connection(h11.CLIENT)
    conn.send(h11.Request(method=b"CONNECT" if head.startswith(b"CONNECT") else b"GET",
                          target=b"x", headers=[("host", "x")]))
    if not head.startswith(b"CONNECT"):
        conn.send(h11.EndOfMessage())
    status, headers, data = 0, {}, b""
    while True:
        event = conn.next_event()
        if event is h11.NEED_DATA:
            try:
                conn.receive_data(await stream.receive())
            except anyio.EndOfStream:
                conn.receive_data(b"")
        elif isinstance(event, h11.Response):
            status = event.status_code
            headers = {n.decode().lower(): v.decode() for n, v in event.headers}
            if head.startswith(b"CONNECT") and status == 200:
                return Reply(status, headers, b"", stream)
        elif isinstance(event, h11.Data):
            data += bytes(event.data)
        else:
            return Reply(status, headers, data, stream)


async def connect(port: int, target: str) -> Reply:
    return await request(port, f"CONNECT {target} HTTP/1.1\r\nHost: {target}\r\n\r\n".encode())


def blocked_log() -> tuple[list[NetworkBlocked], Any]:
    seen: list[NetworkBlocked] = []
    return seen, seen.append


@dataclass
class TokenEndpoint:
    """A loopback OAuth token endpoint: answers a refresh with new tokens, records each request."""

    access: str = "sk-ant-oat01-refreshed-access-token-0123456789"
    refresh: str = "sk-ant-ort01-refreshed-refresh-token-0123456789"
    expires_in: int = 28800
    status: int = 200
    requests: list[dict[str, Any]] = field(default_factory=list)
    url: str = ""


@contextlib.contextmanager
def token_endpoint(endpoint: TokenEndpoint) -> Iterator[TokenEndpoint]:
    class Handler(BaseHTTPRequestHandler):
        def log_message(self, format: str, *args: Any) -> None:
            return

        def do_POST(self) -> None:
            raw = self.rfile.read(int(self.headers.get("Content-Length") or 0))
            endpoint.requests.append({"path": self.path, "json": json.loads(raw),
                                      "content-type": self.headers.get("Content-Type")})
            if endpoint.status == 200:
                payload = {"access_token": endpoint.access, "refresh_token": endpoint.refresh,
                           "expires_in": endpoint.expires_in, "token_type": "Bearer",
                           "scope": "user:inference user:profile"}
            else:
                payload = {"error": "invalid_grant",
                           "error_description": "refresh token " + endpoint.refresh}
            data = json.dumps(payload).encode()
            self.send_response(endpoint.status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, args=(0.05,), daemon=True)
    thread.start()
    endpoint.url = f"http://127.0.0.1:{server.server_address[1]}/v1/oauth/token"
    try:
        yield endpoint
    finally:
        server.shutdown()
        server.server_close()


@dataclass
class CorporateProxy:
    """A plain forwarding proxy on 127.0.0.1, as a company's would be: CONNECT tunnels and
    absolute-form requests, optionally behind Basic auth. Records what it was asked."""

    user: str | None = None
    password: str | None = None
    port: int = 0
    asked: list[tuple[str, str, str | None]] = field(default_factory=list)  # method, target, auth

    @property
    def url(self) -> str:
        auth = f"{self.user}:{self.password}@" if self.user else ""
        return f"http://{auth}127.0.0.1:{self.port}"


@contextlib.contextmanager
def corporate_proxy(proxy: CorporateProxy) -> Iterator[CorporateProxy]:
    """Serve `proxy` from a thread of its own until the block ends."""
    import asyncio
    import base64
    from urllib.parse import urlsplit

    expected = None
    if proxy.user:
        token = base64.b64encode(f"{proxy.user}:{proxy.password}".encode()).decode()
        expected = f"Basic {token}"

    async def pipe(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        with contextlib.suppress(Exception):
            while data := await reader.read(65536):
                writer.write(data)
                await writer.drain()
        with contextlib.suppress(Exception):
            writer.close()

    async def serve(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            head = await reader.readuntil(b"\r\n\r\n")
        except Exception:
            writer.close()
            return
        first, *lines = head.decode("latin-1").split("\r\n")
        method, target, _ = first.split(" ", 2)
        headers = [line.split(":", 1) for line in lines if ":" in line]
        auth = next((v.strip() for k, v in headers if k.lower() == "proxy-authorization"), None)
        proxy.asked.append((method, target, auth))
        if expected is not None and auth != expected:
            writer.write(b"HTTP/1.1 407 Proxy Authentication Required\r\n"
                         b"Proxy-Authenticate: Basic\r\nContent-Length: 0\r\n\r\n")
            await writer.drain()
            writer.close()
            return
        try:
            if method == "CONNECT":
                host, _, port = target.rpartition(":")
                up_reader, up_writer = await asyncio.open_connection(host.strip("[]"), int(port))
            else:
                parts = urlsplit(target)
                up_reader, up_writer = await asyncio.open_connection(parts.hostname,
                                                                     parts.port or 80)
        except OSError:
            writer.write(b"HTTP/1.1 502 Bad Gateway\r\nContent-Length: 0\r\n\r\n")
            await writer.drain()
            writer.close()
            return
        if method == "CONNECT":
            writer.write(b"HTTP/1.1 200 Connection established\r\n\r\n")
        else:
            path = (parts.path or "/") + (f"?{parts.query}" if parts.query else "")
            kept = "".join(f"{k}:{v}\r\n" for k, v in headers
                           if not k.lower().startswith("proxy-"))
            up_writer.write(f"{method} {path} HTTP/1.1\r\n{kept}\r\n".encode("latin-1"))
        await asyncio.gather(pipe(reader, up_writer), pipe(up_reader, writer))

    loop = asyncio.new_event_loop()
    started = threading.Event()
    stopping: list[asyncio.Event] = []

    async def main() -> None:
        server = await asyncio.start_server(serve, "127.0.0.1", 0)
        proxy.port = server.sockets[0].getsockname()[1]
        stop = asyncio.Event()
        stopping.append(stop)
        started.set()
        async with server:
            await stop.wait()

    thread = threading.Thread(target=loop.run_until_complete, args=(main(),), daemon=True)
    thread.start()
    started.wait(10)
    try:
        yield proxy
    finally:
        loop.call_soon_threadsafe(stopping[0].set)
        thread.join(10)
        loop.close()


@contextlib.contextmanager
def http_page(body: bytes) -> Iterator[int]:
    """A plain HTTP server on 127.0.0.1 that answers every GET with `body`: its port."""

    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            self.send_response(200)
            self.send_header("content-length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, format: str, *args: Any) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        yield int(server.server_address[1])
    finally:
        server.shutdown()
        server.server_close()
