"""The Docker Engine's HTTP API, spoken with the standard library only.

Every container and image call of the sandbox goes through `EngineAPI`: the methods and return
values follow docker-py's `APIClient` (same names, same dicts) for the subset channelcoder
uses, so code written against either reads the same. It exists because importing docker-py
(requests, urllib3, charset_normalizer, ...) costs ~80 ms on the machines we measure — more
than the whole budget a `channelcoder run --docker` may add to a raw `docker run`
(bench/sandbox.py). docker-py is still used where it is worth its import: a cache-miss image
build (build context, .dockerignore, registry auth), see `Engine.builder()`.

Connections are kept alive and reused (one per concurrent caller); a stream (attach, events,
a non-detached exec) gets a connection of its own, and its `close()` — from any thread —
shuts the socket so a blocked reader returns at once.
"""

from __future__ import annotations

import contextlib
import hashlib
import http.client
import json
import os
import select
import socket
import threading
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Generic, TypeVar
from urllib.parse import quote, urlencode, urlsplit

T = TypeVar("T")
DEFAULT_HOST = "unix:///var/run/docker.sock"
STDOUT, STDERR = 1, 2
_UNSET: Any = object()


class EngineError(Exception):
    """The engine answered with an error status."""

    def __init__(self, status_code: int, explanation: str) -> None:
        super().__init__(f"{status_code}: {explanation}")
        self.status_code = status_code
        self.explanation = explanation


class NotFound(EngineError):
    """404: no such container, image or exec."""


class EngineConfigError(Exception):
    """DOCKER_HOST (or the Docker context) names an engine this client cannot talk to."""


# ---------------------------------------------------------------------------------------------
# Where the engine is


@dataclass(frozen=True)
class EngineAddress:
    url: str  # unix:///path, tcp://host:port, https://host:port
    tls: TLSFiles | None = None


@dataclass(frozen=True)
class TLSFiles:
    ca: Path | None
    cert: Path | None
    key: Path | None
    verify: bool


def docker_config_dir(env: Mapping[str, str]) -> Path:
    return Path(env.get("DOCKER_CONFIG") or Path.home() / ".docker")


def engine_address(env: Mapping[str, str] | None = None) -> EngineAddress:
    """DOCKER_HOST (+ DOCKER_TLS_VERIFY/DOCKER_CERT_PATH), else the Docker CLI's current
    context, else the default socket — the order docker-py 7.2 and the docker CLI use."""
    env = os.environ if env is None else env
    host = env.get("DOCKER_HOST")
    if host:
        return EngineAddress(host, _tls_from_env(env))
    context = _current_context(env)
    if context is None:
        return EngineAddress(DEFAULT_HOST)
    return context


def _tls_from_env(env: Mapping[str, str]) -> TLSFiles | None:
    cert_path = env.get("DOCKER_CERT_PATH") or None
    verify_text = env.get("DOCKER_TLS_VERIFY")
    verify = verify_text is not None and verify_text != ""
    if not cert_path and not verify:
        return None
    base = Path(cert_path) if cert_path else docker_config_dir(env)
    return TLSFiles(base / "ca.pem", base / "cert.pem", base / "key.pem", verify)


def _current_context(env: Mapping[str, str]) -> EngineAddress | None:
    config_dir = docker_config_dir(env)
    name = env.get("DOCKER_CONTEXT")
    if not name:
        try:
            name = json.loads((config_dir / "config.json").read_text()).get("currentContext")
        except (OSError, ValueError, AttributeError):
            name = None
    if not name or name == "default":
        return None
    digest = hashlib.sha256(name.encode()).hexdigest()
    try:
        meta = json.loads((config_dir / "contexts" / "meta" / digest / "meta.json").read_text())
        endpoint = meta["Endpoints"]["docker"]
        host = str(endpoint["Host"])
    except (OSError, ValueError, KeyError, TypeError) as exc:
        raise EngineConfigError(f"the Docker context {name!r} cannot be read ({exc})") from exc
    tls_dir = config_dir / "contexts" / "tls" / digest / "docker"
    tls = None
    if tls_dir.is_dir():
        def found(name: str) -> Path | None:
            path = tls_dir / name
            return path if path.is_file() else None

        tls = TLSFiles(found("ca.pem"), found("cert.pem"), found("key.pem"),
                       verify=not endpoint.get("SkipTLSVerify", False))
    return EngineAddress(host, tls)


# ---------------------------------------------------------------------------------------------
# Connections


class _UnixConnection(http.client.HTTPConnection):
    def __init__(self, path: str, timeout: float | None) -> None:
        super().__init__("localhost", timeout=timeout)
        self._path = path

    def connect(self) -> None:
        sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        sock.settimeout(self.timeout)
        try:
            sock.connect(self._path)
        except BaseException:
            sock.close()
            raise
        self.sock = sock


def _ssl_context(tls: TLSFiles) -> Any:
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


def _connection_factory(address: EngineAddress) -> tuple[Callable[[float | None],
                                                                   http.client.HTTPConnection], str]:
    """A way to open a connection to the engine, and the engine's URL as docker-py spells it."""
    url = address.url
    parts = urlsplit(url)
    scheme = parts.scheme
    if scheme == "unix":
        path = parts.path or "/var/run/docker.sock"
        return (lambda timeout: _UnixConnection(path, timeout)), f"unix://{path}"
    if scheme in ("tcp", "http", "https"):
        tls = address.tls
        secure = scheme == "https" or tls is not None
        host = parts.hostname or "localhost"
        port = parts.port or (2376 if secure else 2375)
        if secure:
            context = _ssl_context(tls or TLSFiles(None, None, None, verify=True))
            return (lambda timeout: http.client.HTTPSConnection(
                host, port, timeout=timeout, context=context)), f"https://{host}:{port}"
        return (lambda timeout: http.client.HTTPConnection(host, port, timeout=timeout),
                f"http://{host}:{port}")
    raise EngineConfigError(
        f"{url} is not an engine address channelcoder can use (unix://, tcp:// or https://)"
        + ("; for an engine over SSH, forward its socket: ssh -NL /tmp/docker.sock:"
           "/var/run/docker.sock HOST, then DOCKER_HOST=unix:///tmp/docker.sock"
           if scheme == "ssh" else ""))


# ---------------------------------------------------------------------------------------------
# Streams


class Stream(Generic[T]):
    """Items read from a connection of their own; `close()` from any thread ends them."""

    def __init__(self, connection: http.client.HTTPConnection, sock: socket.socket | None,
                 items: Iterator[T], response: http.client.HTTPResponse | None = None) -> None:
        self._connection = connection
        self._sock = sock
        self._items = items
        self._response = response  # a collected response would close the reader under us

    def __iter__(self) -> Iterator[T]:
        return self

    def __next__(self) -> T:
        return next(self._items)

    def close(self) -> None:
        if self._sock is not None:
            with contextlib.suppress(OSError):
                self._sock.shutdown(socket.SHUT_RDWR)
        with contextlib.suppress(Exception):
            self._connection.close()


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
        except (OSError, ValueError, http.client.HTTPException):
            return
        yield header[0], payload


def split_frames(data: bytes) -> Iterator[tuple[int, bytes]]:
    """`read_frames` over bytes already read (a finished `logs` or exec)."""
    offset = 0

    def read(size: int) -> bytes:
        nonlocal offset
        chunk = data[offset:offset + size]
        offset += len(chunk)
        return chunk

    return read_frames(read)


def _demux(frames: Iterator[tuple[int, bytes]]) -> Iterator[tuple[bytes | None, bytes | None]]:
    for kind, payload in frames:
        if kind == STDERR:
            yield None, payload
        elif kind == STDOUT:
            yield payload, None


def _json_lines(response: http.client.HTTPResponse) -> Iterator[dict[str, Any]]:
    while True:
        try:
            line = response.readline()
        except (OSError, ValueError, http.client.HTTPException):
            return
        if not line:
            return
        line = line.strip()
        if line:
            with contextlib.suppress(ValueError):
                item = json.loads(line)
                if isinstance(item, dict):
                    yield item


# ---------------------------------------------------------------------------------------------
# The client


def _filters(filters: Mapping[str, Any]) -> str:
    out: dict[str, list[str]] = {}
    for name, value in filters.items():
        values = value if isinstance(value, list | tuple) else [value]
        out[name] = ["true" if v is True else "false" if v is False else str(v) for v in values]
    return json.dumps(out)


def _query(params: Mapping[str, Any]) -> str:
    items = {k: ("1" if v is True else "0" if v is False else v)
             for k, v in params.items() if v is not None}
    return f"?{urlencode(items)}" if items else ""


def _explanation(status: int, body: bytes) -> str:
    try:
        message = json.loads(body).get("message")
    except (ValueError, AttributeError):
        message = None
    text = message if isinstance(message, str) else body.decode("utf-8", "replace").strip()
    return text or http.client.responses.get(status, "error")


class EngineAPI:
    """A docker-py `APIClient` look-alike for the calls channelcoder makes. Thread-safe."""

    def __init__(self, address: EngineAddress | None = None, *, timeout: float | None = 60,
                 version: str | None = None) -> None:
        self.address = address or engine_address()
        self._open, self.base_url = _connection_factory(self.address)
        self.timeout = timeout
        self._idle: list[http.client.HTTPConnection] = []
        self._lock = threading.Lock()
        self._version = version

    @property
    def api_version(self) -> str:
        if self._version is None:
            self._version = str(self._call("GET", "/version", versioned=False)["ApiVersion"])
        return self._version

    # -- plumbing --------------------------------------------------------------------------

    def _url(self, path: str, versioned: bool = True) -> str:
        return f"/v{self.api_version}{path}" if versioned else path

    def _take(self) -> tuple[http.client.HTTPConnection, bool]:
        with self._lock:
            while self._idle:
                connection = self._idle.pop()
                sock = connection.sock
                if sock is not None and not select.select([sock], [], [], 0)[0]:
                    return connection, True
                connection.close()  # the engine closed it (or sent something unasked)
        return self._open(self.timeout), False

    def _give_back(self, connection: http.client.HTTPConnection) -> None:
        with self._lock:
            if len(self._idle) < 8:
                self._idle.append(connection)
                return
        connection.close()

    def _send(self, method: str, url: str, body: Any, headers: Mapping[str, str] | None,
              timeout: Any) -> tuple[http.client.HTTPConnection, http.client.HTTPResponse]:
        payload: bytes | None = None
        sent = dict(headers or {})
        if body is not None:
            payload = json.dumps(body).encode()
            sent["Content-Type"] = "application/json"
        for attempt in (0, 1):
            connection, reused = self._take()
            if timeout is not _UNSET:
                connection.timeout = timeout
                if connection.sock is not None:
                    connection.sock.settimeout(timeout)
            try:
                connection.request(method, url, body=payload, headers=sent)
                return connection, connection.getresponse()
            except (ConnectionResetError, BrokenPipeError, http.client.RemoteDisconnected):
                connection.close()
                if not reused or attempt:
                    raise
            except BaseException:
                connection.close()
                raise
        raise AssertionError("unreachable")

    def _raw(self, method: str, path: str, *, params: Mapping[str, Any] | None = None,
             body: Any = None, versioned: bool = True, timeout: Any = _UNSET) -> bytes:
        url = self._url(path, versioned) + _query(params or {})
        connection, response = self._send(method, url, body, None, timeout)
        try:
            data = response.read()
        except BaseException:
            connection.close()
            raise
        if timeout is not _UNSET:
            connection.timeout = self.timeout
            if connection.sock is not None:
                connection.sock.settimeout(self.timeout)
        if response.will_close or connection.sock is None:
            connection.close()
        else:
            self._give_back(connection)
        if response.status == 404:
            raise NotFound(404, _explanation(404, data))
        if response.status >= 400:
            raise EngineError(response.status, _explanation(response.status, data))
        return data

    def _call(self, method: str, path: str, **kwargs: Any) -> Any:
        data = self._raw(method, path, **kwargs)
        return json.loads(data) if data.strip() else None

    def _stream(self, method: str, path: str, *, params: Mapping[str, Any] | None = None,
                body: Any = None, upgrade: bool = False
                ) -> tuple[http.client.HTTPConnection, socket.socket | None,
                           http.client.HTTPResponse]:
        url = self._url(path) + _query(params or {})
        headers = {"Connection": "Upgrade", "Upgrade": "tcp"} if upgrade else None
        connection = self._open(self.timeout)
        connection.connect()
        sock = connection.sock
        payload = json.dumps(body).encode() if body is not None else None
        try:
            connection.request(method, url, body=payload, headers={
                **(headers or {}), **({"Content-Type": "application/json"} if payload else {})})
            response = connection.getresponse()
        except BaseException:
            connection.close()
            raise
        if response.status >= 400:
            data = response.read()
            connection.close()
            error = NotFound if response.status == 404 else EngineError
            raise error(response.status, _explanation(response.status, data))
        return connection, sock, response

    def _hijacked(self, method: str, path: str, *, params: Mapping[str, Any] | None = None,
                  body: Any = None) -> Stream[tuple[bytes | None, bytes | None]]:
        connection, sock, response = self._stream(method, path, params=params, body=body,
                                                  upgrade=True)
        reader = response.fp  # the raw stream starts right after the response head
        if reader is None:
            connection.close()
            return Stream(connection, sock, iter(()))
        return Stream(connection, sock, _demux(read_frames(reader.read)), response)

    # -- the engine ------------------------------------------------------------------------

    def version(self) -> dict[str, Any]:
        return dict(self._call("GET", "/version", versioned=False))

    def ping(self) -> bool:
        return self._raw("GET", "/_ping", versioned=False).strip() == b"OK"

    def events(self, *, since: int | None = None,
               filters: Mapping[str, Any] | None = None,
               decode: bool = True) -> Stream[dict[str, Any]]:
        params = {"since": since, "filters": _filters(filters) if filters else None}
        connection, sock, response = self._stream("GET", "/events", params=params)
        return Stream(connection, sock, _json_lines(response), response)

    # -- containers ------------------------------------------------------------------------

    def containers(self, all: bool = False,
                   filters: Mapping[str, Any] | None = None) -> list[dict[str, Any]]:
        params = {"all": all, "filters": _filters(filters) if filters else None}
        return list(self._call("GET", "/containers/json", params=params))

    def create_container(self, config: Mapping[str, Any],
                         name: str | None = None) -> dict[str, Any]:
        """`config` is the Engine API's container body (Image, Cmd, HostConfig, ...)."""
        return dict(self._call("POST", "/containers/create", params={"name": name},
                               body=dict(config)))

    def start(self, container: str) -> None:
        self._raw("POST", f"/containers/{quote(container)}/start")

    def inspect_container(self, container: str) -> dict[str, Any]:
        return dict(self._call("GET", f"/containers/{quote(container)}/json"))

    def remove_container(self, container: str, force: bool = False) -> None:
        self._raw("DELETE", f"/containers/{quote(container)}", params={"force": force})

    def kill(self, container: str, signal: str | None = None) -> None:
        self._raw("POST", f"/containers/{quote(container)}/kill", params={"signal": signal})

    def wait(self, container: str, timeout: float | None = None) -> dict[str, Any]:
        return dict(self._call("POST", f"/containers/{quote(container)}/wait",
                               timeout=_UNSET if timeout is None else timeout))

    def logs(self, container: str, stdout: bool = True, stderr: bool = True) -> bytes:
        data = self._raw("GET", f"/containers/{quote(container)}/logs",
                         params={"stdout": stdout, "stderr": stderr})
        return b"".join(payload for _, payload in split_frames(data))

    def attach(self, container: str, *, stdout: bool = True, stderr: bool = True,
               logs: bool = False) -> Stream[tuple[bytes | None, bytes | None]]:
        """The container's output as (stdout, stderr) pairs; call before `start` to miss none."""
        return self._hijacked("POST", f"/containers/{quote(container)}/attach", params={
            "stdout": stdout, "stderr": stderr, "stream": True, "logs": logs})

    def exec_create(self, container: str, cmd: list[str], *, stdout: bool = True,
                    stderr: bool = True, user: str = "", workdir: str | None = None,
                    environment: Mapping[str, str] | None = None) -> dict[str, Any]:
        body: dict[str, Any] = {"Cmd": cmd, "AttachStdout": stdout, "AttachStderr": stderr,
                                "AttachStdin": False, "Tty": False, "User": user}
        if workdir:
            body["WorkingDir"] = workdir
        if environment:
            body["Env"] = [f"{k}={v}" for k, v in environment.items()]
        return dict(self._call("POST", f"/containers/{quote(container)}/exec", body=body))

    def exec_start(self, exec_id: str, detach: bool = False) -> bytes:
        """Detached: returns at once. Otherwise waits for the command and returns its output."""
        path = f"/exec/{quote(exec_id)}/start"
        if detach:
            self._raw("POST", path, body={"Detach": True, "Tty": False})
            return b""
        stream = self._hijacked("POST", path, body={"Detach": False, "Tty": False})
        try:
            return b"".join(out or err or b"" for out, err in stream)
        finally:
            stream.close()

    # -- images ----------------------------------------------------------------------------

    def inspect_image(self, image: str) -> dict[str, Any]:
        return dict(self._call("GET", f"/images/{quote(image, safe='/:@')}/json"))

    def images(self, filters: Mapping[str, Any] | None = None) -> list[dict[str, Any]]:
        params = {"filters": _filters(filters) if filters else None}
        return list(self._call("GET", "/images/json", params=params))

    def remove_image(self, image: str, force: bool = False) -> None:
        self._raw("DELETE", f"/images/{quote(image, safe='/:@')}", params={"force": force})

    def close(self) -> None:
        with self._lock:
            idle, self._idle = self._idle, []
        for connection in idle:
            connection.close()
