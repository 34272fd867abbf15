"""An engine behind TLS (DOCKER_HOST=tcp://…, DOCKER_TLS_VERIFY, DOCKER_CERT_PATH), as remote
engines are usually exposed: a TLS front on loopback that checks client certificates and
forwards to the real engine's socket. Certificates are made by the real `openssl`."""

from __future__ import annotations

import contextlib
import os
import socket
import ssl
import subprocess
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from channelcoder.errors import DockerUnavailable
from channelcoder.sandbox import engine as eng


def _openssl(*args: str, cwd: Path) -> None:
    subprocess.run(["openssl", *args], cwd=cwd, check=True, capture_output=True, timeout=60)


def _certificates(directory: Path) -> None:
    """ca.pem, a server certificate for 127.0.0.1, and a client cert.pem/key.pem (Docker's names)."""
    _openssl("req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "1", "-subj", "/CN=test-ca",
             "-keyout", "ca-key.pem", "-out", "ca.pem", cwd=directory)
    (directory / "server.ext").write_text("subjectAltName=IP:127.0.0.1\n")
    (directory / "client.ext").write_text("extendedKeyUsage=clientAuth\n")
    for name, ext in (("server", "server.ext"), ("client", "client.ext")):
        _openssl("req", "-newkey", "rsa:2048", "-nodes", "-subj", f"/CN={name}",
                 "-keyout", f"{name}-key.pem", "-out", f"{name}.csr", cwd=directory)
        _openssl("x509", "-req", "-in", f"{name}.csr", "-CA", "ca.pem", "-CAkey", "ca-key.pem",
                 "-CAcreateserial", "-days", "1", "-extfile", ext, "-out", f"{name}.pem",
                 cwd=directory)
    (directory / "cert.pem").write_bytes((directory / "client.pem").read_bytes())
    (directory / "key.pem").write_bytes((directory / "client-key.pem").read_bytes())


def _pump(source: Any, target: Any) -> None:
    with contextlib.suppress(OSError):
        while data := source.recv(65536):
            target.sendall(data)
    with contextlib.suppress(OSError):
        target.shutdown(socket.SHUT_WR)


@contextlib.contextmanager
def _tls_front(directory: Path, engine_socket: str) -> Iterator[int]:
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.load_cert_chain(directory / "server.pem", directory / "server-key.pem")
    context.load_verify_locations(directory / "ca.pem")
    context.verify_mode = ssl.CERT_REQUIRED
    listener = socket.create_server(("127.0.0.1", 0))
    port = listener.getsockname()[1]

    def serve() -> None:
        while True:
            try:
                raw, _ = listener.accept()
            except OSError:
                return
            try:
                client = context.wrap_socket(raw, server_side=True)
            except (OSError, ssl.SSLError):
                raw.close()
                continue
            upstream = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
            upstream.connect(engine_socket)
            threading.Thread(target=_pump, args=(client, upstream), daemon=True).start()
            threading.Thread(target=_pump, args=(upstream, client), daemon=True).start()

    threading.Thread(target=serve, daemon=True).start()
    try:
        yield port
    finally:
        listener.close()


@pytest.fixture
def tls_engine(tmp_path: Path, docker_client: Any) -> Iterator[tuple[int, Path]]:
    host = os.environ.get("DOCKER_HOST", "unix:///var/run/docker.sock")
    if not host.startswith("unix://"):
        pytest.skip("the TLS front forwards to a unix-socket engine")
    _certificates(tmp_path)
    with _tls_front(tmp_path, host.removeprefix("unix://")) as port:
        yield port, tmp_path


def test_a_tls_engine_is_reached_with_the_docker_cert_path_files(
        tls_engine: tuple[int, Path], monkeypatch: pytest.MonkeyPatch,
        docker_client: Any) -> None:
    port, certs = tls_engine
    monkeypatch.setenv("DOCKER_HOST", f"tcp://127.0.0.1:{port}")
    monkeypatch.setenv("DOCKER_TLS_VERIFY", "1")
    monkeypatch.setenv("DOCKER_CERT_PATH", str(certs))
    engine = eng.connect()
    assert engine.api.version()["ApiVersion"] == docker_client.api.version()["ApiVersion"]
    assert engine.host == f"tcp://127.0.0.1:{port}"
    image = docker_client.api.images()[0]["Id"]
    assert engine.api.inspect_image(image)["Id"] == image
    assert engine.api.containers(all=True, filters={"label": "io.channelcoder.none=1"}) == []


def test_a_tls_engine_without_the_client_certificate_is_a_clear_error(
        tls_engine: tuple[int, Path], monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    port, certs = tls_engine
    only_ca = tmp_path / "only-ca"
    only_ca.mkdir()
    (only_ca / "ca.pem").write_bytes((certs / "ca.pem").read_bytes())
    monkeypatch.setenv("DOCKER_HOST", f"tcp://127.0.0.1:{port}")
    monkeypatch.setenv("DOCKER_TLS_VERIFY", "1")
    monkeypatch.setenv("DOCKER_CERT_PATH", str(only_ca))
    with pytest.raises(DockerUnavailable) as caught:
        eng.connect()
    assert f"DOCKER_HOST=tcp://127.0.0.1:{port}" in caught.value.message
    assert "start Docker" in (caught.value.hint or "")
