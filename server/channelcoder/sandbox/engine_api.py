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
shuts the socket so a blocked reader returns at once. Every connection is made within
`CONNECT_TIMEOUT`, streams included (their reads have no timeout). An `ssh://` engine is
reached the docker CLI's way, see engine_ssh.py.

The API version is negotiated as the docker CLI does: the lower of `MAX_API_VERSION` and the
engine's own (`/_ping`), unless `DOCKER_API_VERSION` pins it.
"""

from __future__ import annotations

import contextlib
import json
import os
import re
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
MAX_API_VERSION = "1.45"  # the newest this client is tested against; docker-py 7.2's default
FALLBACK_API_VERSION = "1.24"  # an engine whose /_ping names none (the docker CLI's fallback)
API_VERSION_ENV = "DOCKER_API_VERSION"
CONNECT_TIMEOUT = 10.0
STDOUT, STDERR = 1, 2
_UNSET: Any = object()


class EngineError(Exception):
    """The engine answered with an error status (`explanation` is its own message)."""

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


def pinned_api_version(env: Mapping[str, str] | None = None) -> str | None:
    """DOCKER_API_VERSION, which pins the version instead of negotiating (docker CLI, docker-py)."""
    env = os.environ if env is None else env
    text = (env.get(API_VERSION_ENV) or "").strip()
    if not text:
        return None
    if not re.fullmatch(r"\d+\.\d+", text):
        raise EngineConfigError(f"{API_VERSION_ENV}={text!r} is not an API version like "
                                f"{MAX_API_VERSION}")
    return text


def _version_key(version: str) -> tuple[int, ...]:
    return tuple(int(part) for part in re.findall(r"\d+", version)[:2])


def negotiate(engine_version: str | None) -> str:
    """The version to speak: the lower of the engine's and this client's newest."""
    if not engine_version or not re.fullmatch(r"\d+\.\d+", engine_version.strip()):
        return FALLBACK_API_VERSION
    engine_version = engine_version.strip()
    return min(engine_version, MAX_API_VERSION, key=_version_key)


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
    return _tls_files(base, verify)


def _tls_files(directory: Path, verify: bool) -> TLSFiles:
    """Docker's ca.pem / cert.pem / key.pem in `directory`, those that exist."""
    def found(name: str) -> Path | None:
        path = directory / name
        return path if path.is_file() else None

    return TLSFiles(found("ca.pem"), found("cert.pem"), found("key.pem"), verify)


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
    import hashlib

    digest = hashlib.sha256(name.encode()).hexdigest()
    try:
        meta = json.loads((config_dir / "contexts" / "meta" / digest / "meta.json").read_text())
        endpoint = meta["Endpoints"]["docker"]
        host = str(endpoint["Host"])
    except (OSError, ValueError, KeyError, TypeError) as exc:
        raise EngineConfigError(f"the Docker context {name!r} cannot be read ({exc})") from exc
    tls_dir = config_dir / "contexts" / "tls" / digest / "docker"
    verify = not endpoint.get("SkipTLSVerify", False)
    return EngineAddress(host, _tls_files(tls_dir, verify) if tls_dir.is_dir() else None)


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


Opener = Callable[[float | None], Connection]


def _connect_timeout(timeout: float | None, connect_timeout: float) -> float:
    return connect_timeout if timeout is None else min(timeout, connect_timeout)


def _opener(address: EngineAddress,
            connect_timeout: float = CONNECT_TIMEOUT) -> tuple[Opener, str]:
    """A way to connect to the engine (`open(read_timeout)`: the connection is made within
    `connect_timeout` whatever the read timeout), and the engine's URL."""
    url = address.url
    parts = urlsplit(url)
    scheme = parts.scheme
    if scheme == "unix":
        path = parts.path or "/var/run/docker.sock"

        def unix(timeout: float | None) -> Connection:
            sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
            try:
                sock.settimeout(_connect_timeout(timeout, connect_timeout))
                sock.connect(path)
                sock.settimeout(timeout)
            except BaseException:
                sock.close()
                raise
            return Connection(sock)

        return unix, f"unix://{path}"
    if scheme in ("tcp", "http", "https"):
        tls = address.tls
        secure = scheme == "https" or tls is not None
        host = parts.hostname or "localhost"
        port = parts.port or (2376 if secure else 2375)
        context = _ssl_context(tls or TLSFiles(None, None, None, verify=True)) if secure else None

        def tcp(timeout: float | None) -> Connection:
            sock = socket.create_connection((host, port),
                                            timeout=_connect_timeout(timeout, connect_timeout))
            try:
                if context is not None:
                    sock = context.wrap_socket(sock, server_hostname=host)
                sock.settimeout(timeout)
            except BaseException:
                sock.close()
                raise
            return Connection(sock)

        return tcp, f"{'https' if secure else 'http'}://{host}:{port}"
    if scheme == "ssh":
        from .engine_ssh import ssh_opener, ssh_target

        target = ssh_target(url)
        where = f"{target.user}@{target.host}" if target.user else target.host
        return (ssh_opener(target, connect_timeout),
                f"ssh://{where}{f':{target.port}' if target.port else ''}")
    raise EngineConfigError(
        f"{url} is not an engine address channelcoder can use (unix://, tcp://, https:// "
        "or ssh://)")


def transport(base_url: str, tls: bool) -> str:
    """How the engine is reached, in a word or two: unix socket, tcp, tcp+tls, ssh."""
    scheme = base_url.partition("://")[0]
    return {"unix": "unix socket", "ssh": "ssh", "https": "tcp+tls"}.get(
        scheme, "tcp+tls" if tls else "tcp")


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


def _demux(frames: Iterator[tuple[int, bytes]]) -> Iterator[tuple[bytes | None, bytes | None]]:
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
    return text or f"HTTP {status}"


def _json_body(body: Any) -> tuple[bytes | None, dict[str, str]]:
    if body is None:
        return None, {}
    return json.dumps(body).encode(), {"Content-Type": "application/json"}


def _raise_for(status: int, body: bytes) -> None:
    if status == 404:
        raise NotFound(404, _explanation(404, body))
    if status >= 400:
        raise EngineError(status, _explanation(status, body))


class EngineAPI:
    """A docker-py `APIClient` look-alike for the calls channelcoder makes. Thread-safe."""

    def __init__(self, address: EngineAddress | None = None, *, timeout: float | None = 60,
                 version: str | None = None,
                 connect_timeout: float = CONNECT_TIMEOUT) -> None:
        """`version` pins the API version (DOCKER_API_VERSION); without it, it is negotiated
        on first use."""
        self.address = address or engine_address()
        self._open, self.base_url = _opener(self.address, connect_timeout)
        self.timeout = timeout
        self._idle: list[Connection] = []
        self._lock = threading.Lock()
        self._version = version
        self.pinned = version is not None
        self.engine_api_version: str | None = None  # as the engine's /_ping said

    @property
    def api_version(self) -> str:
        """The version spoken: pinned, or the lower of `MAX_API_VERSION` and the engine's
        own, from `/_ping`'s headers as the docker CLI reads it (`/version` asks every
        runtime component for its version: ~7 ms here, not 0.4)."""
        if self._version is None:
            response, _ = self._request("GET", "/_ping", versioned=False)
            found = response.headers.get("api-version") or None
            if found is None:
                found = str(self._call("GET", "/version", versioned=False).get("ApiVersion")
                            or "") or None
            self.engine_api_version = found
            self._version = negotiate(found)
        return self._version

    # -- plumbing --------------------------------------------------------------------------

    def open_connection(self, timeout: float | None) -> Connection:
        """A new connection of its own to the engine (made within the connect timeout)."""
        return self._open(timeout)

    def _url(self, path: str, params: Mapping[str, Any] | None, versioned: bool = True) -> str:
        prefix = f"/v{self.api_version}" if versioned else ""
        return prefix + path + _query(params or {})

    def _take(self) -> tuple[Connection, bool]:
        with self._lock:
            while self._idle:
                connection = self._idle.pop()
                if connection.usable():
                    return connection, True
                connection.close()
        return self._open(self.timeout), False

    def _give_back(self, connection: Connection) -> None:
        with self._lock:
            if len(self._idle) < 8:
                self._idle.append(connection)
                return
        connection.close()

    def _raw(self, method: str, path: str, **kwargs: Any) -> bytes:
        return self._request(method, path, **kwargs)[1]

    def _request(self, method: str, path: str, *, params: Mapping[str, Any] | None = None,
                 body: Any = None, versioned: bool = True,
                 timeout: Any = _UNSET) -> tuple[Response, bytes]:
        url = self._url(path, params, versioned)
        payload, headers = _json_body(body)
        for attempt in (0, 1):
            connection, reused = self._take()
            if timeout is not _UNSET:
                connection.sock.settimeout(timeout)
            try:
                response = connection.request(method, url, payload, headers)
                data = connection.body(response)
            except ConnectionError:
                connection.close()
                if reused and not attempt:  # the engine had closed an idle connection
                    continue
                raise
            except BaseException:
                connection.close()
                raise
            if response.keep_alive:
                if timeout is not _UNSET:
                    connection.sock.settimeout(self.timeout)
                self._give_back(connection)
            else:
                connection.close()
            _raise_for(response.status, data)
            return response, data
        raise AssertionError("unreachable")

    def _call(self, method: str, path: str, **kwargs: Any) -> Any:
        data = self._raw(method, path, **kwargs)
        return json.loads(data) if data.strip() else None

    def _stream(self, method: str, path: str, *, params: Mapping[str, Any] | None = None,
                body: Any = None, upgrade: bool = False) -> tuple[Connection, Response]:
        """A request on a connection of its own, whose body the caller reads as it comes."""
        url = self._url(path, params)
        payload, headers = _json_body(body)
        if upgrade:
            headers.update({"Connection": "Upgrade", "Upgrade": "tcp"})
        connection = self._open(self.timeout)
        try:
            response = connection.request(method, url, payload, headers)
            if response.status >= 400:
                _raise_for(response.status, connection.body(response))
        except BaseException:
            connection.close()
            raise
        return connection, response

    def _hijacked(self, method: str, path: str, *, params: Mapping[str, Any] | None = None,
                  body: Any = None) -> Stream[tuple[bytes | None, bytes | None]]:
        """The raw stdout/stderr stream that follows an upgraded (or plain) response head."""
        connection, _ = self._stream(method, path, params=params, body=body, upgrade=True)
        return Stream(connection, _demux(read_frames(connection.reader.read)))

    # -- the engine ------------------------------------------------------------------------

    def version(self) -> dict[str, Any]:
        return dict(self._call("GET", "/version", versioned=False))

    def ping(self) -> bool:
        return self._raw("GET", "/_ping", versioned=False).strip() == b"OK"

    def events(self, *, since: int | None = None,
               filters: Mapping[str, Any] | None = None,
               decode: bool = True) -> Stream[dict[str, Any]]:
        params = {"since": since, "filters": _filters(filters) if filters else None}
        connection, response = self._stream("GET", "/events", params=params)
        chunks = (connection.chunks() if Connection.chunked(response.headers)
                  else iter(lambda: connection.reader.read1(65536), b""))
        return Stream(connection, json_lines(chunks))

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
               logs: bool = False, stdin: bool = False) -> Stream[tuple[bytes | None, bytes | None]]:
        """The container's output as (stdout, stderr) pairs; call before `start` to miss none.
        With `stdin`, the connection is also the container's stdin (`Stream.send`); closing
        it closes that stdin when the container was created with `StdinOnce`."""
        return self._hijacked("POST", f"/containers/{quote(container)}/attach", params={
            "stdout": stdout, "stderr": stderr, "stream": True, "logs": logs, "stdin": stdin})

    def exec_create(self, container: str, cmd: list[str], *, stdout: bool = True,
                    stderr: bool = True, user: str = "", workdir: str | None = None,
                    environment: Mapping[str, str] | None = None,
                    stdin: bool = False) -> dict[str, Any]:
        body: dict[str, Any] = {"Cmd": cmd, "AttachStdout": stdout, "AttachStderr": stderr,
                                "AttachStdin": stdin, "Tty": False, "User": user}
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

    def exec_stream(self, exec_id: str) -> Stream[tuple[bytes | None, bytes | None]]:
        """Start an exec and return its attached stream (stdin too, if it was created so); the
        engine closes the command's stdin when this stream closes."""
        return self._hijacked("POST", f"/exec/{quote(exec_id)}/start",
                              body={"Detach": False, "Tty": False})

    # -- images ----------------------------------------------------------------------------

    def inspect_image(self, image: str) -> dict[str, Any]:
        return dict(self._call("GET", f"/images/{quote(image, safe='/:@')}/json"))

    def images(self, filters: Mapping[str, Any] | None = None) -> list[dict[str, Any]]:
        params = {"filters": _filters(filters) if filters else None}
        return list(self._call("GET", "/images/json", params=params))

    def remove_image(self, image: str, force: bool = False) -> None:
        self._raw("DELETE", f"/images/{quote(image, safe='/:@')}", params={"force": force})

    # -- pulls -----------------------------------------------------------------------------

    def pull(self, ref: str, *, auth: Mapping[str, str] | None = None) -> Stream[dict[str, Any]]:
        """`POST /images/create`: the engine's progress lines as they come (`status`, `id`,
        `progressDetail`). A failure found before the pull starts is an EngineError (404: no
        such image, or access denied); one found later is an `error` line in the stream.
        `auth` is the registry's AuthConfig (sent as X-Registry-Auth). Closing the stream
        aborts the pull: the engine stops when its client goes away."""
        repository, tag = split_reference(ref)
        url = self._url("/images/create", {"fromImage": repository, "tag": tag})
        headers = {"X-Registry-Auth": registry_auth_header(auth)} if auth else {}
        connection = self._open(self.timeout)
        try:
            response = connection.request("POST", url, b"", headers)
            if response.status >= 400:
                _raise_for(response.status, connection.body(response))
        except BaseException:
            connection.close()
            raise
        chunks = (connection.chunks() if Connection.chunked(response.headers)
                  else iter(lambda: connection.reader.read1(65536), b""))
        return Stream(connection, json_lines(chunks))

    def close(self) -> None:
        with self._lock:
            idle, self._idle = self._idle, []
        for connection in idle:
            connection.close()


# ---------------------------------------------------------------------------------------------
# Pulling images


def split_reference(ref: str) -> tuple[str, str]:
    """`registry:5000/name:tag` -> (`registry:5000/name`, `tag`); a digest is the tag part
    (`name@sha256:...` -> (`name`, `sha256:...`)); no tag means `latest`."""
    name, at, digest = ref.partition("@")
    if at:
        return name, digest
    head, colon, tag = ref.rpartition(":")
    if colon and "/" not in tag:
        return head, tag
    return ref, "latest"


def registry_auth_header(auth: Mapping[str, str]) -> str:
    """X-Registry-Auth: the AuthConfig JSON, URL-safe base64."""
    import base64

    return base64.urlsafe_b64encode(json.dumps(dict(auth)).encode()).decode("ascii")
