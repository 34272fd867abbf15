"""The host-side egress proxy: the sandbox's one way out.

It listens on a Unix socket (mounted into the sandbox, where a forwarder exposes it on
127.0.0.1) and, for tests, on 127.0.0.1. HTTP is parsed by h11 on both sides. Three kinds of
request:

- `CONNECT host:port` (HTTPS and any other TCP): policy, then connect to the checked address,
  answer 200 and splice bytes both ways;
- an absolute-form request (`GET http://host/path`): policy, then forward it, streaming;
- an origin-form request (`POST /v1/messages`): the API route, forwarded to the real upstream
  with the real credentials put in; the response is streamed unbuffered (server-sent events
  arrive as the upstream produces them).

A refused connection calls `on_blocked(NetworkBlocked(...))` and gets a 403 with a short
reason. For a name outside the allowlist, an `ask(host, port)` hook (when given) is awaited,
bounded by `ask_timeout`: "job" or "always" allows it for the rest of this proxy's life
("always" also calls `on_always(host, port)`, to persist it), "deny" refuses it from then on.
A forbidden address (loopback, private, metadata, …) is refused without asking. The upstream's
host and port are always allowed (as `policy.allow` would). When the host has a proxy of its own
(`via`, a corporate proxy), every upstream connection goes through it (`via.py`).
"""

from __future__ import annotations

import contextlib
import ipaddress
import logging
import os
from collections.abc import Awaitable, Callable, Iterable
from dataclasses import dataclass
from pathlib import Path
from types import TracebackType
from typing import TYPE_CHECKING, Literal
from urllib.parse import urlsplit

import anyio
import anyio.abc
import h11
from anyio.streams.tls import TLSStream

from ..claude.events import NetworkBlocked
from .credentials import Credentials
from .policy import Policy, resolve_checked
from .via import Route, TunnelFailed, tunnel

if TYPE_CHECKING:
    import ssl

log = logging.getLogger(__name__)

Answer = Literal["job", "always", "deny"]
AskHook = Callable[[str, int], Awaitable[str]]
DEFAULT_UPSTREAM = "https://api.anthropic.com"
HOP_BY_HOP = frozenset({"connection", "keep-alive", "proxy-connection", "proxy-authorization",
                        "proxy-authenticate", "te", "trailer", "transfer-encoding", "upgrade",
                        "expect"})
CHUNK = 65536


@dataclass(frozen=True)
class Limits:
    """Bounds against a hostile or stuck client."""

    header_bytes: int = 64 * 1024        # request line + headers
    idle_seconds: float = 300.0          # no byte either way on a connection
    upstream_seconds: float = 600.0      # waiting for the upstream's next byte
    connect_seconds: float = 15.0
    connections: int = 512               # served at once; more wait their turn
    api_body_bytes: int = 64 * 1024 * 1024


class Refused(Exception):
    def __init__(self, host: str, port: int, reason: str) -> None:
        super().__init__(reason)
        self.host, self.port, self.reason = host, port, reason


class _Closed(Exception):
    """The client went away or broke the protocol: end the connection quietly."""


@dataclass
class _Upstream:
    scheme: str
    host: str
    port: int
    base_path: str

    @classmethod
    def parse(cls, url: str) -> _Upstream:
        parts = urlsplit(url)
        scheme = parts.scheme or "https"
        port = parts.port or (443 if scheme == "https" else 80)
        return cls(scheme, parts.hostname or "api.anthropic.com", port, parts.path.rstrip("/"))

    @property
    def host_header(self) -> str:
        default = 443 if self.scheme == "https" else 80
        host = f"[{self.host}]" if ":" in self.host else self.host
        return host if self.port == default else f"{host}:{self.port}"


def tls_context(ca_bundle: str | Path | None = None) -> ssl.SSLContext:
    """System CAs, certifi's, and the user's extra bundle (a TLS-intercepting proxy's).
    Imported here: only an https upstream needs them, and they cost a CLI run 10 ms."""
    import ssl

    import certifi

    context = ssl.create_default_context()
    context.load_verify_locations(certifi.where())
    if ca_bundle:
        context.load_verify_locations(str(ca_bundle))
    return context


class EgressProxy:
    """`async with EgressProxy(...) as proxy:` serves until the block ends."""

    def __init__(self, policy: Policy, credentials: Credentials | None = None, *,
                 socket_path: str | Path | None = None, tcp: bool = False,
                 upstream: str | None = None, ca_bundle: str | Path | None = None,
                 on_blocked: Callable[[NetworkBlocked], None] | None = None,
                 ask: AskHook | None = None, ask_timeout: float = 60.0,
                 on_always: Callable[[str, int], None] | None = None,
                 socket_mode: int = 0o600, limits: Limits | None = None,
                 api_aliases: Iterable[str] = (), via: Route | None = None) -> None:
        if socket_path is None and not tcp:
            raise ValueError("EgressProxy needs a socket_path, tcp=True, or both")
        self.policy = policy
        self.credentials = credentials or Credentials()
        self.socket_path = Path(socket_path) if socket_path is not None else None
        self.upstream = _Upstream.parse(upstream or DEFAULT_UPSTREAM)
        if not policy.allows(self.upstream.host, self.upstream.port):
            policy.allow(self.upstream.host, self.upstream.port)  # the API host: always
        self.ca_bundle = ca_bundle
        self.on_blocked = on_blocked
        self.ask = ask
        self.ask_timeout = ask_timeout
        self.on_always = on_always
        self.socket_mode = socket_mode
        self.via = via or Route()
        self._tcp = tcp or socket_path is None
        # "http://127.0.0.1:PORT" as the sandbox sees its forwarder: a client that sends its
        # API requests through HTTP_PROXY names the API route in absolute form.
        self.api_aliases = tuple(f"http://{a.lower().rstrip('/')}/" for a in api_aliases)
        self.limits = limits or Limits()
        self.port: int | None = None
        self._tls: ssl.SSLContext | None = None
        self._slots = anyio.CapacityLimiter(self.limits.connections)
        self._denied: set[tuple[str, int]] = set()
        self._asking: dict[tuple[str, int], anyio.Event] = {}
        self._group: anyio.abc.TaskGroup | None = None
        self._listeners: list[anyio.abc.Listener[anyio.abc.SocketStream]] = []
        self._socket_inode = -1

    # -- lifetime ---------------------------------------------------------------------------

    async def __aenter__(self) -> EgressProxy:
        if self.socket_path is not None:
            with contextlib.suppress(FileNotFoundError):
                self.socket_path.unlink()  # a previous proxy's socket: listen again here
            unix = await _unix_listener(self.socket_path)
            os.chmod(self.socket_path, self.socket_mode)
            self._socket_inode = self.socket_path.stat().st_ino
            self._listeners.append(unix)
        if self._tcp:
            tcp = await anyio.create_tcp_listener(local_host="127.0.0.1", local_port=0)
            self.port = int(tcp.extra(anyio.abc.SocketAttribute.local_port))
            self._listeners.append(tcp)
        self._group = anyio.create_task_group()
        await self._group.__aenter__()
        for listener in self._listeners:
            self._group.start_soon(listener.serve, self._serve)
        return self

    async def __aexit__(self, exc_type: type[BaseException] | None,
                        exc: BaseException | None, tb: TracebackType | None) -> None:
        assert self._group is not None
        self._group.cancel_scope.cancel()
        with contextlib.suppress(Exception):
            await self._group.__aexit__(None, None, None)
        for listener in self._listeners:
            with contextlib.suppress(Exception):
                await listener.aclose()
        if self.socket_path is not None:
            with contextlib.suppress(OSError):
                if self.socket_path.stat().st_ino == self._socket_inode:  # not a successor's
                    self.socket_path.unlink()

    # -- one client connection --------------------------------------------------------------

    async def _serve(self, client: anyio.abc.SocketStream) -> None:
        async with self._slots, client:
            conn = h11.Connection(h11.SERVER, max_incomplete_event_size=self.limits.header_bytes)
            api = _ApiConnection(self)
            try:
                while True:
                    request = await self._next_request(client, conn)
                    if request is None:
                        return
                    target = request.target.decode("latin-1")
                    for alias in self.api_aliases:
                        if target.lower().startswith(alias):
                            target = "/" + target[len(alias):]
                            request = h11.Request(method=request.method, target=target,
                                                  headers=request.headers,
                                                  http_version=request.http_version)
                    if request.method == b"CONNECT":
                        await self._connect(client, conn, target)
                        return
                    if target.startswith("/"):
                        await api.forward(client, conn, request)
                    elif target.lower().startswith("http://"):
                        await self._forward_plain(client, conn, request, target)
                    else:
                        await _answer(client, conn, 400, "only CONNECT, http:// URLs and the "
                                                         "API route are served here")
                    if conn.our_state is not h11.DONE or conn.their_state is not h11.DONE:
                        return
                    conn.start_next_cycle()
            except (_Closed, anyio.BrokenResourceError, anyio.ClosedResourceError,
                    anyio.EndOfStream, TimeoutError, h11.ProtocolError, OSError):
                return
            except Exception as exc:  # one broken connection never stops the proxy
                log.warning("egress: a connection failed (%s)", type(exc).__name__)
                return
            finally:
                await api.aclose()

    async def _next_request(self, client: anyio.abc.SocketStream,
                            conn: h11.Connection) -> h11.Request | None:
        while True:
            try:
                event = conn.next_event()
            except h11.RemoteProtocolError as exc:
                if conn.our_state in (h11.IDLE, h11.SEND_RESPONSE):
                    status = 431 if "incomplete" in str(exc) or "too long" in str(exc) \
                        else exc.error_status_hint
                    await _answer(client, conn, status, "request header too large"
                                  if status == 431 else "malformed request")
                return None
            if event is h11.NEED_DATA:
                with anyio.fail_after(self.limits.idle_seconds):
                    try:
                        data = await client.receive(CHUNK)
                    except anyio.EndOfStream:
                        data = b""
                conn.receive_data(data)
                continue
            if isinstance(event, h11.Request):
                size = len(event.target) + sum(len(n) + len(v) + 4 for n, v in event.headers)
                if size > self.limits.header_bytes:  # h11 bounds only a header still arriving
                    await _answer(client, conn, 431, "request header too large")
                    return None
                return event
            return None  # ConnectionClosed, or a body event out of place

    # -- the policy -------------------------------------------------------------------------

    async def _checked(self, host: str, port: int) -> str:
        """The address to connect to for host:port, or Refused (reported as blocked)."""
        host = host.strip("[]").lower().rstrip(".")
        try:
            return await self._decide(host, port)
        except Refused as refused:
            if self.on_blocked is not None:
                try:
                    self.on_blocked(NetworkBlocked(host=host, port=port, reason=refused.reason))
                except Exception:
                    log.exception("the network-blocked callback failed")
            raise

    async def _decide(self, host: str, port: int) -> str:
        if not 0 < port < 65536:
            raise Refused(host, port, "not a valid port")
        if _is_literal(host):  # a forbidden address is refused before anyone is asked
            address, reason = await resolve_checked(self.policy, host, port)
            if address is None:
                raise Refused(host, port, reason)
        if not self.policy.allows(host, port):
            await self._ask(host, port)
        # A name is resolved only once allowed: a refused name never becomes a DNS query.
        address, reason = await resolve_checked(self.policy, host, port)
        if address is None:
            if self.via.any and reason == f"{host.strip('[]')} does not resolve":
                return host  # the host's own proxy resolves it (see via.py)
            raise Refused(host, port, reason)
        return address

    async def _ask(self, host: str, port: int) -> None:
        key = (host, port)
        if key in self._denied:
            raise Refused(host, port, "denied")
        if self.ask is None:
            raise Refused(host, port, "not in the allowlist")
        pending = self._asking.get(key)
        if pending is not None:  # the same question is already on the user's screen
            await pending.wait()
            if self.policy.allows(host, port):
                return
            raise Refused(host, port, "denied" if key in self._denied else "no answer")
        done = self._asking[key] = anyio.Event()
        try:
            answer: str = "timeout"
            with anyio.move_on_after(self.ask_timeout):
                answer = await self.ask(host, port)
        except Exception:
            log.exception("asking about %s:%d failed", host, port)
            answer = "deny"
        finally:
            del self._asking[key]
        try:
            if answer in ("job", "always"):
                self.policy.allow(host, port)
                if answer == "always" and self.on_always is not None:
                    try:
                        self.on_always(host, port)
                    except Exception:
                        log.exception("saving the answer for %s:%d failed", host, port)
                return
            if answer == "timeout":
                raise Refused(host, port, f"no answer within {self.ask_timeout:g} s")
            self._denied.add(key)
            raise Refused(host, port, "denied")
        finally:
            done.set()

    # -- CONNECT ----------------------------------------------------------------------------

    async def _connect(self, client: anyio.abc.SocketStream, conn: h11.Connection,
                       target: str) -> None:
        host, port = _split_authority(target, 443)
        try:
            address = await self._checked(host, port)
        except Refused as refused:
            await _refuse(client, conn, refused)
            return
        remote = await self._open(client, conn, address, host, port)
        if remote is None:
            return
        async with remote:
            await client.send(conn.send(h11.Response(status_code=200, headers=[],
                                                     reason=b"Connection established")))
            leftover, _ = conn.trailing_data
            if leftover:
                await remote.send(leftover)
            await _splice(client, remote, self.limits.idle_seconds)

    async def _open(self, client: anyio.abc.SocketStream, conn: h11.Connection, address: str,
                    host: str, port: int) -> anyio.abc.SocketStream | None:
        """A connection to the checked address (through the host's proxy, when it has one),
        or None once the client has its 502."""
        via = self.via.for_target(host, port, tunnel=True)
        try:
            if via is not None:
                return await tunnel(via, host, port, self.limits.connect_seconds)
            with anyio.fail_after(self.limits.connect_seconds):
                return await anyio.connect_tcp(address, port)
        except TunnelFailed as exc:
            await _answer(client, conn, 502, f"cannot connect to {host}:{port}: {exc}")
        except (OSError, TimeoutError) as exc:
            through = f" through your proxy {via}" if via is not None else ""
            await _answer(client, conn, 502, f"cannot connect to {host}:{port}{through} "
                                             f"({type(exc).__name__})")
        return None

    async def _open_plain(self, client: anyio.abc.SocketStream, conn: h11.Connection,
                          address: str, host: str,
                          port: int) -> tuple[anyio.abc.SocketStream | None, bool]:
        """`_open` for a plain HTTP request; True when it goes to the host's proxy, which
        takes the request in absolute form."""
        via = self.via.for_target(host, port, tunnel=False)
        if via is None:
            return await self._open(client, conn, address, host, port), False
        try:
            with anyio.fail_after(self.limits.connect_seconds):
                return await anyio.connect_tcp(via.host, via.port), True
        except (OSError, TimeoutError) as exc:
            await _answer(client, conn, 502, f"cannot reach your proxy {via} "
                                             f"({type(exc).__name__})")
            return None, True

    # -- absolute-form plain HTTP -----------------------------------------------------------

    async def _forward_plain(self, client: anyio.abc.SocketStream, conn: h11.Connection,
                             request: h11.Request, target: str) -> None:
        parts = urlsplit(target)
        host = parts.hostname or ""
        try:
            port = parts.port or 80
        except ValueError:
            port = -1
        try:
            address = await self._checked(host, port)
        except Refused as refused:
            await _refuse(client, conn, refused)
            await _drain(client, conn, self.limits.idle_seconds)
            return
        path = (parts.path or "/") + (f"?{parts.query}" if parts.query else "")
        authority = host if port == 80 else f"{host}:{port}"
        headers = [("host", authority), *_end_to_end(request.headers, skip={"host"}),
                   *_framing(request.headers), ("connection", "close")]
        remote, proxied = await self._open_plain(client, conn, address, host, port)
        if remote is None:
            await _drain(client, conn, self.limits.idle_seconds)
            return
        if proxied:
            via = self.via.for_target(host, port, tunnel=False)
            path = f"http://{authority}{path}"
            headers += via.headers() if via is not None else []
        async with remote:
            upstream = h11.Connection(h11.CLIENT)
            await remote.send(upstream.send(h11.Request(method=request.method, target=path,
                                                        headers=headers)))
            await _relay_body(client, conn, remote, upstream, self.limits.idle_seconds)
            await _relay_response(remote, upstream, client, conn, self.limits)


class _ApiConnection:
    """The API route of one client connection, with its kept-alive upstream connection."""

    def __init__(self, proxy: EgressProxy) -> None:
        self.proxy = proxy
        self.stream: anyio.abc.ByteStream | None = None
        self.conn: h11.Connection | None = None

    async def forward(self, client: anyio.abc.SocketStream, conn: h11.Connection,
                      request: h11.Request) -> None:
        proxy, up = self.proxy, self.proxy.upstream
        body = await _read_body(client, conn, proxy.limits)
        if body is None:
            await _answer(client, conn, 413, "request body too large")
            return
        headers: list[tuple[str, str]] = [("host", up.host_header)]
        try:
            for name, value in _end_to_end(request.headers, skip={"host", "content-length"}):
                headers.append((name, await proxy.credentials.substitute(name, value)))
        except Exception as exc:
            await _answer(client, conn, 502, getattr(exc, "message", type(exc).__name__))
            return
        headers.append(("content-length", str(len(body))))
        target = up.base_path + request.target.decode("latin-1")
        plain_via = proxy.via.for_target(up.host, up.port, tunnel=False) \
            if up.scheme == "http" else None
        if plain_via is not None:  # the host's proxy takes plain HTTP in absolute form
            target = f"http://{up.host_header}{target}"
            headers += plain_via.headers()
        outgoing = h11.Request(method=request.method, target=target, headers=headers)
        for attempt in (1, 2):
            reused = self.stream is not None
            try:
                stream, upstream = await self._connection()
                await stream.send(upstream.send(outgoing))
                if body:
                    await stream.send(upstream.send(h11.Data(data=body)))
                await stream.send(upstream.send(h11.EndOfMessage()))
                response = await _next_upstream_event(stream, upstream, proxy.limits)
            except (OSError, TimeoutError, anyio.BrokenResourceError, anyio.EndOfStream,
                    anyio.ClosedResourceError, h11.ProtocolError, TunnelFailed) as exc:
                await self.aclose()
                if reused and attempt == 1:
                    continue  # the kept-alive connection had gone stale: once more, fresh
                why = str(exc) if isinstance(exc, TunnelFailed) else type(exc).__name__
                await _answer(client, conn, 502, f"the API upstream {up.host}:{up.port} "
                                                 f"failed ({why})")
                return
            break
        await _send_response(client, conn, response)
        ok = await _relay_response_body(stream, upstream, client, conn, proxy.limits)
        if ok and upstream.our_state is h11.DONE and upstream.their_state is h11.DONE:
            upstream.start_next_cycle()
        else:
            await self.aclose()

    async def _connection(self) -> tuple[anyio.abc.ByteStream, h11.Connection]:
        if self.stream is not None and self.conn is not None:
            return self.stream, self.conn
        proxy, up = self.proxy, self.proxy.upstream
        seconds = proxy.limits.connect_seconds
        via = proxy.via.for_target(up.host, up.port, tunnel=up.scheme == "https")
        with anyio.fail_after(seconds):
            if up.scheme == "https":
                if proxy._tls is None:
                    proxy._tls = tls_context(proxy.ca_bundle)
                if via is not None:
                    stream: anyio.abc.ByteStream = await TLSStream.wrap(
                        await tunnel(via, up.host, up.port, seconds), hostname=up.host,
                        ssl_context=proxy._tls, standard_compatible=False)
                else:
                    stream = await anyio.connect_tcp(
                        up.host, up.port, tls=True, ssl_context=proxy._tls,
                        tls_hostname=up.host, tls_standard_compatible=False)
            elif via is not None:
                stream = await anyio.connect_tcp(via.host, via.port)
            else:
                stream = await anyio.connect_tcp(up.host, up.port)
        self.stream, self.conn = stream, h11.Connection(h11.CLIENT)
        return stream, self.conn

    async def aclose(self) -> None:
        stream, self.stream, self.conn = self.stream, None, None
        if stream is not None:
            with contextlib.suppress(Exception):
                await stream.aclose()


SUN_PATH_MAX = 107  # a Unix socket's path, in bytes, as bind() takes it on Linux


async def _unix_listener(path: Path) -> anyio.abc.Listener[anyio.abc.SocketStream]:
    """Listen on `path`, however long: a deep state dir (XDG_STATE_HOME, a test's tmp dir) can
    be past what bind() takes, so a longer path is bound through a short link to its directory
    made for the moment (the socket itself is made where `path` says)."""
    if len(os.fsencode(path)) <= SUN_PATH_MAX:
        return await anyio.create_unix_listener(path)
    import shutil
    import tempfile

    short = Path(tempfile.mkdtemp(prefix="cc-"))
    try:
        (short / "d").symlink_to(path.parent, target_is_directory=True)
        return await anyio.create_unix_listener(short / "d" / path.name)
    finally:
        shutil.rmtree(short, ignore_errors=True)


# -- HTTP plumbing --------------------------------------------------------------------------


def _is_literal(host: str) -> bool:
    try:
        ipaddress.ip_address(host)
    except ValueError:
        return False
    return True


def _split_authority(target: str, default_port: int) -> tuple[str, int]:
    if target.startswith("["):
        host, _, rest = target[1:].partition("]")
        port_text = rest[1:] if rest.startswith(":") else ""
    else:
        host, _, port_text = target.rpartition(":") if ":" in target else (target, "", "")
    try:
        port = int(port_text) if port_text else default_port
    except ValueError:
        port = -1
    return host, port


def _end_to_end(headers: Iterable[tuple[bytes, bytes]],
                skip: frozenset[str] | set[str] = frozenset()) -> list[tuple[str, str]]:
    headers = list(headers)
    named = {v.strip().lower() for n, value in headers if n.lower() == b"connection"
             for v in value.decode("latin-1").split(",")}
    out = []
    for name, value in headers:
        lower = name.decode("latin-1").lower()
        if lower in HOP_BY_HOP or lower in named or lower in skip:
            continue
        out.append((lower, value.decode("latin-1")))
    return out


def _framing(headers: Iterable[tuple[bytes, bytes]]) -> list[tuple[str, str]]:
    """A chunked message stays chunked on the other side (h11 re-frames it)."""
    return [("transfer-encoding", "chunked") for n, v in headers
            if n.lower() == b"transfer-encoding" and b"chunked" in v.lower()][:1]


async def _answer(client: anyio.abc.ByteStream, conn: h11.Connection, status: int,
                  text: str) -> None:
    """A short plain-text answer (the connection closes after it)."""
    if conn.our_state not in (h11.IDLE, h11.SEND_RESPONSE):
        return
    body = (text + "\n").encode()
    with contextlib.suppress(Exception):
        await client.send(conn.send(h11.Response(status_code=status, headers=[
            ("content-type", "text/plain; charset=utf-8"), ("content-length", str(len(body))),
            ("connection", "close")])))
        await client.send(conn.send(h11.Data(data=body)))
        await client.send(conn.send(h11.EndOfMessage()))


async def _refuse(client: anyio.abc.ByteStream, conn: h11.Connection, refused: Refused) -> None:
    await _answer(client, conn, 403, f"channelcoder's sandbox may not connect to "
                                     f"{refused.host}:{refused.port}: {refused.reason}")


async def _receive(stream: anyio.abc.ByteStream, conn: h11.Connection, seconds: float) -> None:
    if conn.our_role is h11.SERVER and conn.they_are_waiting_for_100_continue:
        await stream.send(conn.send(h11.InformationalResponse(status_code=100, headers=[])))
    with anyio.fail_after(seconds):
        try:
            data = await stream.receive(CHUNK)
        except anyio.EndOfStream:
            data = b""
    conn.receive_data(data)


async def _drain(client: anyio.abc.ByteStream, conn: h11.Connection, seconds: float) -> None:
    """Read the rest of a refused request's body (bounded), so the answer is read."""
    with contextlib.suppress(Exception), anyio.move_on_after(min(seconds, 5.0)):
        while conn.their_state is h11.SEND_BODY:
            event = conn.next_event()
            if event is h11.NEED_DATA:
                await _receive(client, conn, seconds)
            elif isinstance(event, h11.ConnectionClosed):
                return


async def _read_body(client: anyio.abc.ByteStream, conn: h11.Connection,
                     limits: Limits) -> bytes | None:
    parts: list[bytes] = []
    size = 0
    while True:
        event = conn.next_event()
        if event is h11.NEED_DATA:
            await _receive(client, conn, limits.idle_seconds)
        elif isinstance(event, h11.Data):
            size += len(event.data)
            if size > limits.api_body_bytes:
                return None
            parts.append(bytes(event.data))
        elif isinstance(event, h11.EndOfMessage):
            return b"".join(parts)
        else:
            raise _Closed


async def _relay_body(client: anyio.abc.ByteStream, conn: h11.Connection,
                      remote: anyio.abc.ByteStream, upstream: h11.Connection,
                      seconds: float) -> None:
    """Stream the client's request body to the upstream."""
    while True:
        event = conn.next_event()
        if event is h11.NEED_DATA:
            await _receive(client, conn, seconds)
        elif isinstance(event, h11.Data):
            await remote.send(upstream.send(h11.Data(data=event.data)))
        elif isinstance(event, h11.EndOfMessage):
            await remote.send(upstream.send(h11.EndOfMessage()))
            return
        else:
            raise _Closed


async def _next_upstream_event(remote: anyio.abc.ByteStream, upstream: h11.Connection,
                               limits: Limits) -> h11.Response:
    while True:
        event = upstream.next_event()
        if event is h11.NEED_DATA:
            await _receive(remote, upstream, limits.upstream_seconds)
        elif isinstance(event, h11.Response):
            return event
        elif isinstance(event, h11.InformationalResponse):
            continue
        else:
            raise anyio.EndOfStream


async def _send_response(client: anyio.abc.ByteStream, conn: h11.Connection,
                         response: h11.Response) -> None:
    headers = _end_to_end(response.headers)
    framing = _framing(response.headers)
    if framing and "content-length" in {n for n, _ in headers}:
        headers = [(n, v) for n, v in headers if n != "content-length"]
    await client.send(conn.send(h11.Response(status_code=response.status_code,
                                             headers=headers + framing,
                                             reason=response.reason)))


async def _relay_response_body(remote: anyio.abc.ByteStream, upstream: h11.Connection,
                               client: anyio.abc.ByteStream, conn: h11.Connection,
                               limits: Limits) -> bool:
    """Stream the response body to the client as it arrives; False if the upstream broke off."""
    while True:
        try:
            event = upstream.next_event()
            if event is h11.NEED_DATA:
                await _receive(remote, upstream, limits.upstream_seconds)
                continue
        except (OSError, TimeoutError, anyio.BrokenResourceError, h11.ProtocolError):
            raise _Closed from None
        if isinstance(event, h11.Data):
            await client.send(conn.send(h11.Data(data=event.data)))
        elif isinstance(event, h11.EndOfMessage):
            await client.send(conn.send(h11.EndOfMessage()))
            return True
        else:
            raise _Closed


async def _relay_response(remote: anyio.abc.ByteStream, upstream: h11.Connection,
                          client: anyio.abc.ByteStream, conn: h11.Connection,
                          limits: Limits) -> None:
    try:
        response = await _next_upstream_event(remote, upstream, limits)
    except (OSError, TimeoutError, anyio.BrokenResourceError, anyio.EndOfStream,
            h11.ProtocolError) as exc:
        await _answer(client, conn, 502, f"the upstream failed ({type(exc).__name__})")
        return
    await _send_response(client, conn, response)
    await _relay_response_body(remote, upstream, client, conn, limits)


async def _splice(a: anyio.abc.SocketStream, b: anyio.abc.SocketStream, idle: float) -> None:
    """Copy bytes both ways until both sides are done or nothing moves either way for `idle`
    seconds (a long download with a silent upload is not idle)."""
    last = [anyio.current_time()]
    async with anyio.create_task_group() as group:

        async def pump(source: anyio.abc.SocketStream, sink: anyio.abc.SocketStream) -> None:
            try:
                while True:
                    with anyio.move_on_after(idle) as waited:
                        data = await source.receive(CHUNK)
                    if waited.cancelled_caught:
                        if anyio.current_time() - last[0] >= idle:
                            group.cancel_scope.cancel()
                            return
                        continue
                    last[0] = anyio.current_time()
                    await sink.send(data)
            except anyio.EndOfStream:
                with contextlib.suppress(Exception):
                    await sink.send_eof()
            except (OSError, anyio.BrokenResourceError, anyio.ClosedResourceError):
                group.cancel_scope.cancel()

        group.start_soon(pump, a, b)
        group.start_soon(pump, b, a)
