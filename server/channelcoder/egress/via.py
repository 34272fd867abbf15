"""The host's own proxy (a corporate proxy): the egress proxy's way out when the host has one.

The egress proxy runs on the host, so it goes out the way the host does. When the host names a
proxy — `HTTPS_PROXY` / `HTTP_PROXY` / `ALL_PROXY` in either case, or the docker CLI's
`config.json` proxies, which a container would otherwise have been given — every upstream
connection goes through it: `CONNECT host:port` for HTTPS and other TCP (the API route to an
`https` upstream runs its TLS inside that tunnel), an absolute-form request for plain HTTP.
`NO_PROXY` is honoured as curl does: `*`, exact hosts and IP literals, and domain suffixes
(`example.com` and `.example.com` both cover `api.example.com`), each with an optional `:port`.

The policy is still checked here first. A name that does not resolve on this machine (common
behind a corporate proxy, whose own DNS sees the internet) is left to that proxy to resolve —
it can only reach what the proxy reaches. A password in the proxy's URL becomes a
`Proxy-Authorization: Basic` header and is never shown.
"""

from __future__ import annotations

import base64
import ipaddress
from collections.abc import Mapping
from dataclasses import dataclass
from urllib.parse import unquote, urlsplit

import anyio
import anyio.abc

from ..redact import register_secret

HTTPS_NAMES = ("HTTPS_PROXY", "https_proxy")
HTTP_NAMES = ("HTTP_PROXY", "http_proxy")
ALL_NAMES = ("ALL_PROXY", "all_proxy")
NO_PROXY_NAMES = ("NO_PROXY", "no_proxy")


class TunnelFailed(Exception):
    """The host's proxy would not open the connection; the message says what it answered."""


@dataclass(frozen=True)
class Via:
    """One proxy of the host's: where it listens and how to authenticate to it."""

    host: str
    port: int
    authorization: str | None = None

    @classmethod
    def parse(cls, url: str) -> Via | None:
        text = url.strip()
        if not text:
            return None
        if "://" not in text:
            text = f"http://{text}"
        try:
            parts = urlsplit(text)
            port = parts.port or (443 if parts.scheme == "https" else 80)
        except ValueError:
            return None
        if parts.scheme not in ("http", "") or not parts.hostname:
            return None  # an https:// or socks proxy: not spoken here
        authorization = None
        if parts.username is not None:
            user, password = unquote(parts.username), unquote(parts.password or "")
            register_secret(password)
            token = base64.b64encode(f"{user}:{password}".encode()).decode()
            register_secret(token)
            authorization = f"Basic {token}"
        return cls(parts.hostname, port, authorization)

    def __str__(self) -> str:
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"{host}:{self.port}"

    def headers(self) -> list[tuple[str, str]]:
        return [("proxy-authorization", self.authorization)] if self.authorization else []


@dataclass(frozen=True)
class Route:
    """Which of the host's proxies (if any) a connection to host:port goes through."""

    https: Via | None = None
    http: Via | None = None
    no_proxy: tuple[str, ...] = ()

    @classmethod
    def from_env(cls, env: Mapping[str, str]) -> Route:
        def first(names: tuple[str, ...]) -> Via | None:
            for name in names:
                if env.get(name):
                    return Via.parse(env[name])
            return None

        fallback = first(ALL_NAMES)  # for both schemes, as in curl
        no_proxy = next((env[n] for n in NO_PROXY_NAMES if env.get(n)), "")
        return cls(first(HTTPS_NAMES) or fallback, first(HTTP_NAMES) or fallback,
                   tuple(e.strip().lower() for e in no_proxy.split(",") if e.strip()))

    @property
    def any(self) -> bool:
        return self.https is not None or self.http is not None

    def describe(self) -> str | None:
        shown = dict.fromkeys(str(v) for v in (self.https, self.http) if v is not None)
        return ", ".join(shown) or None

    def for_target(self, host: str, port: int, *, tunnel: bool) -> Via | None:
        """The proxy for a tunnel (CONNECT, TLS) or a plain HTTP request to host:port."""
        via = (self.https or self.http) if tunnel else self.http
        if via is None or self._excluded(host.strip("[]").lower().rstrip("."), port):
            return None
        return via

    def _excluded(self, host: str, port: int) -> bool:
        for entry in self.no_proxy:
            if entry == "*":
                return True
            name, entry_port = entry, None
            if entry.startswith("["):
                name, _, rest = entry[1:].partition("]")
                entry_port = rest[1:] if rest.startswith(":") else None
            elif entry.count(":") == 1:
                name, _, entry_port = entry.partition(":")
            if entry_port and entry_port != str(port):
                continue
            if _in_network(host, name):
                return True
            name = name.lstrip("*").lstrip(".").rstrip(".")
            if name and (host == name or host.endswith("." + name)):
                return True
        return False


def _in_network(host: str, entry: str) -> bool:
    """An IP literal host inside an address or CIDR entry."""
    try:
        address = ipaddress.ip_address(host)
        return address in ipaddress.ip_network(entry, strict=False)
    except ValueError:
        return False


async def tunnel(via: Via, host: str, port: int, seconds: float) -> anyio.abc.SocketStream:
    """A TCP connection to host:port through `via` (`CONNECT`), ready for the caller's bytes.

    Raises OSError or TimeoutError when the proxy cannot be reached, TunnelFailed when it
    answers anything but 2xx."""
    import h11  # the proxy's own module has it loaded; describing a route needs none of it

    authority = f"[{host}]:{port}" if ":" in host else f"{host}:{port}"
    with anyio.fail_after(seconds):
        stream = await anyio.connect_tcp(via.host, via.port)
        try:
            conn = h11.Connection(h11.CLIENT)
            await stream.send(conn.send(h11.Request(
                method=b"CONNECT", target=authority,
                headers=[("host", authority), *via.headers()])))
            while True:
                event = conn.next_event()
                if event is h11.NEED_DATA:
                    try:
                        conn.receive_data(await stream.receive())
                    except anyio.EndOfStream:
                        conn.receive_data(b"")
                    continue
                if isinstance(event, h11.Response):
                    if not 200 <= event.status_code < 300:
                        raise TunnelFailed(f"your proxy {via} answered {event.status_code} "
                                           f"{event.reason.decode('latin-1', 'replace')}".rstrip())
                    if conn.trailing_data[0]:
                        raise TunnelFailed(f"your proxy {via} sent data before the tunnel")
                    return stream
                if isinstance(event, h11.ConnectionClosed):
                    raise TunnelFailed(f"your proxy {via} closed the connection")
        except h11.ProtocolError as exc:
            await stream.aclose()
            raise TunnelFailed(f"your proxy {via} did not answer in HTTP ({exc})") from None
        except BaseException:
            await stream.aclose()
            raise
