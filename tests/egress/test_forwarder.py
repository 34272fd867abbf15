"""The sandbox's forwarder (`forward.js`, run here on the host with the machine's node): a proxy
that starts listening a moment after the forwarder (a CLI run starts the container and the
proxy at once) still gets the connection, and what was sent before arrives unchanged.
(What it adds to an exchange is measured in bench/egress.py.)"""

from __future__ import annotations

import shutil
import socket
import threading
import time
from pathlib import Path

import pytest

from channelcoder.testing.forwarder import run_forwarder

pytestmark = [pytest.mark.timeout(30),
              pytest.mark.skipif(shutil.which("node") is None, reason="needs node")]


def echo_on(socket_path: Path, after: float) -> threading.Thread:
    """A Unix-socket echo server that starts listening `after` seconds from now."""
    def serve() -> None:
        time.sleep(after)
        with socket.socket(socket.AF_UNIX) as server:
            server.bind(str(socket_path))
            server.listen()
            while True:
                conn, _ = server.accept()
                threading.Thread(target=echo, args=(conn,), daemon=True).start()

    def echo(conn: socket.socket) -> None:
        with conn:
            while data := conn.recv(65536):
                conn.sendall(data)

    thread = threading.Thread(target=serve, daemon=True)
    thread.start()
    return thread


def test_a_proxy_that_listens_late_still_gets_the_connection(tmp_path: Path) -> None:
    path = tmp_path / "egress.sock"
    with run_forwarder(path) as port:
        echo_on(path, after=0.4)
        with socket.create_connection(("127.0.0.1", port), timeout=5) as client:
            client.sendall(b"sent before the proxy listened")
            assert client.recv(100) == b"sent before the proxy listened"

