"""The sandbox's Node forwarder (`forward.js`) run on this machine, for tests and benchmarks
of the path a sandbox's connections take to the egress proxy."""

from __future__ import annotations

import contextlib
import os
import socket
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path


@contextlib.contextmanager
def run_forwarder(socket_path: str | Path, wait: float = 10.0) -> Iterator[int]:
    """`node forward.js` listening on a free port of 127.0.0.1 (yielded), carrying each
    connection to `socket_path`. TimeoutError when it does not listen within `wait` s."""
    from ..sandbox.container.egress_link import FORWARDER

    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = int(probe.getsockname()[1])
    node = subprocess.Popen(["node", str(FORWARDER)], env={
        "PATH": os.environ["PATH"], "CHANNELCODER_EGRESS_PORT": str(port),
        "CHANNELCODER_EGRESS_SOCKET": str(socket_path)})
    try:
        deadline = time.monotonic() + wait
        while True:
            try:
                socket.create_connection(("127.0.0.1", port), timeout=1).close()
                break
            except OSError:
                if time.monotonic() > deadline:
                    raise TimeoutError(f"the forwarder did not listen within {wait:g} s") from None
                time.sleep(0.02)
        yield port
    finally:
        node.terminate()
        node.wait(5)
