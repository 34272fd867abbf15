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
reached the docker CLI's way, see ssh.py. Where the engine is: address.py; the HTTP: http.py.

The API version is negotiated as the docker CLI does: the lower of `MAX_API_VERSION` and the
engine's own (`/_ping`), unless `DOCKER_API_VERSION` pins it.
"""

from __future__ import annotations

import json
import socket
import threading
from collections.abc import Callable, Mapping
from typing import Any, TypeVar
from urllib.parse import quote, urlencode, urlsplit

from .address import (
    EngineAddress,
    EngineConfigError,
    TLSFiles,
    engine_address,
    negotiate,
)
from .http import (
    Connection,
    Response,
    Stream,
    demux,
    json_lines,
    read_frames,
    split_frames,
    ssl_context,
)

T = TypeVar("T")
CONNECT_TIMEOUT = 10.0
_UNSET: Any = object()

class EngineError(Exception):
    """The engine answered with an error status (`explanation` is its own message)."""

    def __init__(self, status_code: int, explanation: str) -> None:
        super().__init__(f"{status_code}: {explanation}")
        self.status_code = status_code
        self.explanation = explanation


class NotFound(EngineError):
    """404: no such container, image or exec."""



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
        context = ssl_context(tls or TLSFiles(None, None, None, verify=True)) if secure else None

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
        from .ssh import ssh_opener, ssh_target

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
    if isinstance(body, bytes):  # an archive (`put_archive`)
        return body, {"Content-Type": "application/x-tar"}
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
        return Stream(connection, demux(read_frames(connection.reader.read)))

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

    # -- files and volumes (a remote engine gets the workspace through these) --------------

    def info(self) -> dict[str, Any]:
        return dict(self._call("GET", "/info"))

    def put_archive(self, container: str, path: str, data: bytes) -> None:
        """Extract a tar into `path` of a container (created or running), keeping the owners
        the tar names (`copyUIDGID` would give every file the container's user instead)."""
        self._raw("PUT", f"/containers/{quote(container)}/archive", params={"path": path},
                  body=data, timeout=None)

    def get_archive(self, container: str, path: str) -> bytes:
        """`path` of a container as a tar (its last component is the tar's top entry)."""
        return self._raw("GET", f"/containers/{quote(container)}/archive",
                         params={"path": path}, timeout=None)

    def create_volume(self, name: str, labels: Mapping[str, str] | None = None) -> dict[str, Any]:
        return dict(self._call("POST", "/volumes/create",
                               body={"Name": name, "Labels": dict(labels or {})}))

    def inspect_volume(self, name: str) -> dict[str, Any]:
        return dict(self._call("GET", f"/volumes/{quote(name)}"))

    def remove_volume(self, name: str, force: bool = False) -> None:
        self._raw("DELETE", f"/volumes/{quote(name)}", params={"force": force})

    def volumes(self, filters: Mapping[str, Any] | None = None) -> list[dict[str, Any]]:
        params = {"filters": _filters(filters) if filters else None}
        return list(self._call("GET", "/volumes", params=params).get("Volumes") or [])

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
