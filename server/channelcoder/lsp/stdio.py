"""Keep the JSON-RPC streams to the protocol (imports nothing heavy: it runs first).

The real stdin/stdout move to private descriptors: fd 0 becomes /dev/null and fd 1 a copy of
stderr, so no print from any layer and no child process (Claude, docker, git) can write into
the JSON-RPC stream or read the client's messages.
"""

from __future__ import annotations

import os
import sys
from typing import BinaryIO


def isolate_stdio() -> tuple[BinaryIO, BinaryIO]:
    """Private copies of stdin/stdout for JSON-RPC; fds 0 and 1 no longer reach the client."""
    rpc_in = os.fdopen(os.dup(0), "rb", buffering=0)
    rpc_out = os.fdopen(os.dup(1), "wb")
    devnull = os.open(os.devnull, os.O_RDONLY)
    os.dup2(devnull, 0)
    os.close(devnull)
    sys.stdout.flush()
    os.dup2(2, 1)
    sys.stdin = open(os.devnull, encoding="utf-8")  # noqa: SIM115 - lives as long as the process
    sys.stdout = sys.stderr
    return rpc_in, rpc_out
