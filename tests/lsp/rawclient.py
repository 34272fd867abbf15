"""A minimal synchronous JSON-RPC client over a real `channelcoder lsp` process.

It checks the framing of every byte the server writes to stdout (`stray` collects anything
that is not a `Content-Length` framed JSON message), which is how the tests prove stdout
carries only JSON-RPC. Used by the fuzz and lifecycle tests (hypothesis wants sync code).
"""

from __future__ import annotations

import contextlib
import itertools
import json
import os
import queue
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import Any

SERVER = [sys.executable, "-m", "channelcoder", "lsp"]


class RawClient:
    def __init__(self, env: dict[str, str] | None = None, args: list[str] | None = None) -> None:
        self.process = subprocess.Popen(
            [*SERVER, *(args or [])], stdin=subprocess.PIPE, stdout=subprocess.PIPE,
            stderr=subprocess.PIPE, env={**os.environ, **(env or {})})
        self.messages: queue.Queue[dict[str, Any]] = queue.Queue()
        self.notifications: list[dict[str, Any]] = []
        self.stray: list[bytes] = []
        self.stderr = bytearray()
        self._ids = itertools.count(1)
        self._responses: dict[Any, dict[str, Any]] = {}
        self._lock = threading.Condition()
        threading.Thread(target=self._read, daemon=True).start()
        threading.Thread(target=self._drain, daemon=True).start()

    # -- wire ----------------------------------------------------------------------------------

    def _read(self) -> None:
        stream = self.process.stdout
        assert stream is not None
        length: int | None = None
        while True:
            line = stream.readline()
            if not line:
                return
            if line == b"\r\n" and length is not None:
                body = stream.read(length)
                length = None
                try:
                    message = json.loads(body)
                except ValueError:
                    self.stray.append(body)
                    continue
                self._dispatch(message)
            elif line.lower().startswith(b"content-length:") and line.endswith(b"\r\n"):
                length = int(line.split(b":", 1)[1])
            elif line.lower().startswith(b"content-type:") and length is not None:
                continue
            else:
                self.stray.append(line)

    def _drain(self) -> None:
        assert self.process.stderr is not None
        for line in self.process.stderr:
            self.stderr += line

    def _dispatch(self, message: dict[str, Any]) -> None:
        if "method" in message and "id" in message:  # a request from the server
            self._answer(message)
        elif "method" in message:
            with self._lock:
                self.notifications.append(message)
                self._lock.notify_all()
        else:
            with self._lock:
                self._responses[message.get("id")] = message
                self._lock.notify_all()

    def _answer(self, request: dict[str, Any]) -> None:
        method = request["method"]
        result: Any = None
        if method == "workspace/applyEdit":
            result = {"applied": False, "failureReason": "raw client"}
        elif method == "window/showDocument":
            result = {"success": True}
        elif method == "workspace/configuration":
            result = [None for _ in request.get("params", {}).get("items", [])]
        self.send({"jsonrpc": "2.0", "id": request["id"], "result": result})

    def send(self, message: dict[str, Any]) -> None:
        body = json.dumps(message).encode()
        assert self.process.stdin is not None
        self.process.stdin.write(b"Content-Length: %d\r\n\r\n" % len(body) + body)
        self.process.stdin.flush()

    # -- API -----------------------------------------------------------------------------------

    def request(self, method: str, params: Any = None, timeout: float = 60.0) -> dict[str, Any]:
        msg_id = next(self._ids)
        self.send({"jsonrpc": "2.0", "id": msg_id, "method": method, "params": params})
        deadline = time.monotonic() + timeout
        with self._lock:
            while msg_id not in self._responses:
                left = deadline - time.monotonic()
                if left <= 0 or self.process.poll() is not None:
                    raise TimeoutError(f"no reply to {method} (server exit code "
                                       f"{self.process.poll()}):\n{self.stderr.decode()[-2000:]}")
                self._lock.wait(min(left, 0.2))
            return self._responses.pop(msg_id)

    def notify(self, method: str, params: Any = None) -> None:
        self.send({"jsonrpc": "2.0", "method": method, "params": params})

    def initialize(self, root: Path, init: dict[str, Any] | None = None,
                   capabilities: dict[str, Any] | None = None) -> dict[str, Any]:
        reply = self.request("initialize", {
            "processId": os.getpid(), "rootUri": root.as_uri(), "capabilities": capabilities or {
                "window": {"workDoneProgress": True}},
            "initializationOptions": init})
        self.notify("initialized", {})
        return reply

    def wait_exit(self, timeout: float = 10.0) -> int:
        return self.process.wait(timeout)

    def close(self) -> None:
        if self.process.poll() is None:
            try:
                self.request("shutdown", None, timeout=10)
                self.notify("exit")
                self.process.wait(10)
            except Exception:
                self.process.kill()
                self.process.wait()
        for stream in (self.process.stdin, self.process.stdout, self.process.stderr):
            if stream is not None:
                with contextlib.suppress(OSError):
                    stream.close()
