"""The stdlib engine client's pure parts: where the engine is, and the engine's stream formats.

Talking to the real engine is covered by every sandbox test; the connection tests here use a
small HTTP server on a unix socket of the test's own, to make the engine's behaviours the real
engine will not show on demand (closing an idle connection, chunk boundaries mid-line).
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import socket
import struct
import threading
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from channelcoder.sandbox.engine.address import DEFAULT_HOST, EngineConfigError, engine_address
from channelcoder.sandbox.engine.api import EngineAPI, NotFound
from channelcoder.sandbox.engine.http import json_lines, split_frames


def test_docker_host_wins_and_tls_comes_from_the_environment(tmp_path: Path) -> None:
    assert engine_address({"DOCKER_CONFIG": str(tmp_path / "none")}).url == DEFAULT_HOST
    plain = engine_address({"DOCKER_HOST": "tcp://10.0.0.5:2375", "HOME": str(tmp_path)})
    assert plain.url == "tcp://10.0.0.5:2375" and plain.tls is None
    for name in ("ca.pem", "cert.pem", "key.pem"):
        (tmp_path / name).write_text("x")
    secured = engine_address({"DOCKER_HOST": "tcp://h:2376", "DOCKER_TLS_VERIFY": "1",
                              "DOCKER_CERT_PATH": str(tmp_path)})
    assert secured.tls is not None and secured.tls.verify
    assert secured.tls.ca == tmp_path / "ca.pem" and secured.tls.key == tmp_path / "key.pem"
    (tmp_path / "key.pem").unlink()
    no_key = engine_address({"DOCKER_HOST": "tcp://h:2376", "DOCKER_TLS_VERIFY": "1",
                             "DOCKER_CERT_PATH": str(tmp_path)}).tls
    assert no_key is not None and no_key.key is None and no_key.ca == tmp_path / "ca.pem"
    unverified = engine_address({"DOCKER_HOST": "tcp://h:2376", "DOCKER_TLS_VERIFY": "",
                                 "DOCKER_CERT_PATH": str(tmp_path)})
    assert unverified.tls is not None and not unverified.tls.verify


def _context(config: Path, name: str, host: str, *, tls: bool = False) -> None:
    digest = hashlib.sha256(name.encode()).hexdigest()
    meta = config / "contexts" / "meta" / digest
    meta.mkdir(parents=True)
    (meta / "meta.json").write_text(json.dumps(
        {"Name": name, "Endpoints": {"docker": {"Host": host, "SkipTLSVerify": False}}}))
    if tls:
        files = config / "contexts" / "tls" / digest / "docker"
        files.mkdir(parents=True)
        for name in ("ca.pem", "cert.pem", "key.pem"):
            (files / name).write_text("x")


def test_the_docker_cli_context_is_followed_when_docker_host_is_unset(tmp_path: Path) -> None:
    config = tmp_path / "docker"
    _context(config, "remote", "tcp://192.0.2.7:2376", tls=True)
    _context(config, "other", "unix:///run/other.sock")
    (config / "config.json").write_text(json.dumps({"currentContext": "remote"}))
    found = engine_address({"DOCKER_CONFIG": str(config)})
    assert found.url == "tcp://192.0.2.7:2376"
    assert found.tls is not None and found.tls.verify and found.tls.cert is not None
    chosen = engine_address({"DOCKER_CONFIG": str(config), "DOCKER_CONTEXT": "other"})
    assert chosen.url == "unix:///run/other.sock" and chosen.tls is None
    assert engine_address({"DOCKER_CONFIG": str(config), "DOCKER_CONTEXT": "default"}).url \
        == DEFAULT_HOST
    with pytest.raises(EngineConfigError, match="'gone'"):
        engine_address({"DOCKER_CONFIG": str(config), "DOCKER_CONTEXT": "gone"})


def test_an_ssh_engine_is_reached_the_docker_clis_way() -> None:
    from channelcoder.sandbox.engine.address import EngineAddress
    from channelcoder.sandbox.engine.ssh import ssh_target

    target = ssh_target("ssh://me@build-box:2222")
    assert (target.user, target.host, target.port) == ("me", "build-box", 2222)
    argv = target.argv(connect_timeout=10)
    assert argv[0] == "ssh" and argv[-5:] == ["--", "build-box", "docker", "system",
                                               "dial-stdio"]
    assert "BatchMode=yes" in argv and argv[argv.index("-p"):][:2] == ["-p", "2222"]
    assert EngineAPI(EngineAddress("ssh://me@build-box:2222")).base_url \
        == "ssh://me@build-box:2222"
    for bad in ("ssh://", "ssh://host/some/path", "ssh://me:password@host", "ssh://host:x"):
        with pytest.raises(EngineConfigError, match="not an ssh engine address"):
            ssh_target(bad)


def test_the_api_version_is_the_lower_of_ours_and_the_engines() -> None:
    from channelcoder.sandbox.engine.address import MAX_API_VERSION, negotiate

    assert negotiate("1.41") == "1.41"
    assert negotiate("1.9") == "1.9"  # numerically lower than 1.41, not as text
    assert negotiate("1.99") == MAX_API_VERSION
    assert negotiate(None) == negotiate("nonsense") == "1.24"


def test_docker_api_version_pins_the_version_and_a_bad_one_is_named() -> None:
    from channelcoder.sandbox.engine.address import pinned_api_version

    assert pinned_api_version({}) is None
    assert pinned_api_version({"DOCKER_API_VERSION": " 1.40 "}) == "1.40"
    with pytest.raises(EngineConfigError, match="DOCKER_API_VERSION='latest'"):
        pinned_api_version({"DOCKER_API_VERSION": "latest"})


def test_an_engine_newer_than_this_client_is_spoken_to_in_our_version(tmp_path: Path) -> None:
    from channelcoder.sandbox.engine.address import MAX_API_VERSION, EngineAddress

    def handle(head: bytes, conn: socket.socket) -> bool:
        path = head.split()[1].decode()
        conn.sendall(_json_reply({"Path": path},
                                 extra="Api-Version: 1.99\r\n" if path == "/_ping" else ""))
        return True

    path = tmp_path / "engine.sock"
    with _serve(path, handle):
        api = EngineAPI(EngineAddress(f"unix://{path}"), timeout=5)
        assert api._call("GET", "/info")["Path"] == f"/v{MAX_API_VERSION}/info"
        assert api.engine_api_version == "1.99" and not api.pinned
        api.close()  # the test's engine serves one connection at a time
        pinned = EngineAPI(EngineAddress(f"unix://{path}"), timeout=5, version="1.40")
        assert pinned._call("GET", "/info")["Path"] == "/v1.40/info"


def test_a_stream_to_an_engine_that_never_accepts_fails_within_the_connect_timeout(
        tmp_path: Path) -> None:
    """Streams have no read timeout; connecting still has one (a full backlog: nobody
    accepts, as with a hung engine)."""
    import time

    from channelcoder.sandbox.engine.address import EngineAddress

    path = tmp_path / "hung.sock"
    server = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    server.bind(str(path))
    server.listen(0)
    queued = []
    with contextlib.ExitStack() as stack:
        stack.callback(server.close)
        for _ in range(4):  # fill the backlog so the next connect blocks
            client = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
            client.setblocking(False)
            with contextlib.suppress(BlockingIOError):
                client.connect(str(path))
            queued.append(client)
            stack.callback(client.close)
        api = EngineAPI(EngineAddress(f"unix://{path}"), timeout=None, version="1.41",
                        connect_timeout=1.0)
        started = time.monotonic()
        with pytest.raises(OSError):
            api.ping()
        assert time.monotonic() - started < 5


def _frame(kind: int, payload: bytes) -> bytes:
    return struct.pack(">BxxxI", kind, len(payload)) + payload


def test_multiplexed_output_is_split_into_stdout_and_stderr() -> None:
    data = _frame(1, b'{"type":"system"}\n') + _frame(2, b"warning\n") + _frame(1, b"") \
        + _frame(1, b"tail")
    assert list(split_frames(data)) == [(1, b'{"type":"system"}\n'), (2, b"warning\n"),
                                        (1, b""), (1, b"tail")]
    assert list(split_frames(data + b"\x01\x00")) == list(split_frames(data))  # cut header


def test_event_lines_survive_any_chunking() -> None:
    events = [{"Action": "start", "id": "a"}, {"Action": "die", "id": "a"}]
    text = b"".join(json.dumps(e).encode() + b"\n" for e in events)
    for cut in range(1, len(text)):
        assert list(json_lines(iter([text[:cut], text[cut:]]))) == events


# ---------------------------------------------------------------------------------------------
# A tiny engine on a unix socket


@contextlib.contextmanager
def _serve(path: Path, handle: Callable[[bytes, socket.socket], bool]) -> Iterator[None]:
    """Accept connections; `handle(request_head, conn)` answers, returns False to hang up."""
    server = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    server.bind(str(path))
    server.listen()

    def loop() -> None:
        while True:
            try:
                conn, _ = server.accept()
            except OSError:
                return
            with conn:
                buffer = b""
                while True:
                    chunk = conn.recv(65536)
                    if not chunk:
                        break
                    buffer += chunk
                    while b"\r\n\r\n" in buffer:
                        head, _, buffer = buffer.partition(b"\r\n\r\n")
                        if not handle(head, conn):
                            break
                    else:
                        continue
                    break

    threading.Thread(target=loop, daemon=True).start()
    try:
        yield
    finally:
        server.close()


def _json_reply(body: object, *, extra: str = "") -> bytes:
    data = json.dumps(body).encode()
    return (f"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: {len(data)}"
            f"\r\n{extra}\r\n").encode() + data


def test_an_idle_connection_the_engine_closed_is_replaced_not_reported(tmp_path: Path) -> None:
    from channelcoder.sandbox.engine.address import EngineAddress

    def handle(head: bytes, conn: socket.socket) -> bool:
        path = head.split()[1].decode()
        conn.sendall(_json_reply({"ApiVersion": "1.41", "Path": path},
                                 extra="Api-Version: 1.43\r\n" if path == "/_ping" else ""))
        return False  # keep-alive promised, then hung up, as an engine restart would

    path = tmp_path / "engine.sock"
    with _serve(path, handle):
        api = EngineAPI(EngineAddress(f"unix://{path}"), timeout=5)
        assert api.version()["ApiVersion"] == "1.41"
        for _ in range(3):
            assert api._call("GET", "/info")["Path"] == "/v1.43/info"  # as /_ping said


def test_engine_errors_carry_the_engines_words(tmp_path: Path) -> None:
    from channelcoder.sandbox.engine.address import EngineAddress

    def handle(head: bytes, conn: socket.socket) -> bool:
        data = b'{"message":"No such container: abc"}'
        conn.sendall(b"HTTP/1.1 404 Not Found\r\nContent-Type: application/json\r\n"
                     b"Transfer-Encoding: chunked\r\n\r\n"
                     + f"{len(data):x}\r\n".encode() + data + b"\r\n0\r\n\r\n")
        return True

    path = tmp_path / "engine.sock"
    with _serve(path, handle):
        api = EngineAPI(EngineAddress(f"unix://{path}"), timeout=5, version="1.41")
        with pytest.raises(NotFound) as caught:
            api.inspect_container("abc")
        assert caught.value.explanation == "No such container: abc"
        with pytest.raises(NotFound):  # the same (kept-alive) connection, read to its end
            api.inspect_container("abc")


def test_engine_failures_are_told_apart_for_both_clients() -> None:
    import requests
    from docker.errors import APIError
    from docker.errors import NotFound as DockerNotFound

    from channelcoder.errors import DockerUnavailable, SandboxError
    from channelcoder.sandbox.engine import translate
    from channelcoder.sandbox.engine.api import EngineError

    for refused in (EngineError(500, "boom"), APIError("500 Server Error", explanation="boom")):
        error = translate(refused, "building x")  # docker-py's APIError is also an OSError
        assert isinstance(error, SandboxError) and not isinstance(error, DockerUnavailable)
        assert error.message == "building x: boom" and "docker info" in (error.hint or "")
    for missing in (NotFound(404, "No such image: y"), DockerNotFound("404", explanation="gone")):
        assert not isinstance(translate(missing, "inspecting"), DockerUnavailable)
    for down in (ConnectionRefusedError(111, "Connection refused"),
                 requests.exceptions.ConnectionError("refused")):
        assert isinstance(translate(down, "starting"), DockerUnavailable)
