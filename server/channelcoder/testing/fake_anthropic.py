"""A scripted Anthropic Messages API on 127.0.0.1: the one fake in channelcoder's tests.

The real Claude Code CLI is pointed at it with ``ANTHROPIC_BASE_URL`` and a dummy
``ANTHROPIC_API_KEY``. A :class:`Scenario` lists the assistant turns; the turn served for a
request is the number of assistant messages already in that request (stateless, so retries,
resumed sessions and concurrent jobs never desynchronise it). Requests that offer no tools
(titles, summaries, side calls) get a short text reply and consume no turn.

    with FakeAnthropic(Scenario([ToolCall("Bash", {"command": "ls"}), Reply("done")])) as api:
        env = api.env()          # ANTHROPIC_BASE_URL + dummy key
        ...
        api.requests             # every request, recorded

Run standalone (demo, benchmarks): ``python -m channelcoder.testing.fake_anthropic FILE``.
"""

from __future__ import annotations

import argparse
import contextlib
import itertools
import json
import socket
import sys
import threading
import time
import uuid
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

DUMMY_KEY = "sk-ant-scripted-model-not-a-real-key"


@dataclass
class Failure:
    """Answer a turn with an HTTP error `times` times before serving it (0 = always).

    `retry_header`: send `x-should-retry` ("true" for 429/529, else "false"), which the CLI
    obeys; without it the CLI decides by itself and retries even a 401 (a bad API key).
    """

    status: int = 529
    times: int = 1
    message: str = "scripted failure"
    retry_header: bool = True


@dataclass
class Reply:
    """An assistant text reply."""

    text: str


@dataclass
class ToolCall:
    """An assistant tool call; `name` must be a tool the request offers."""

    name: str
    input: dict[str, Any]
    id: str | None = None


Block = Reply | ToolCall


@dataclass
class Turn:
    blocks: list[Block]
    chunks: int = 1
    delay: float = 0.0
    failure: Failure | None = None
    disconnect_after: int | None = None
    disconnect_times: int = 1
    first_delay: float = 0.0


TurnLike = Turn | Block | Sequence[Block]


@dataclass
class RecordedRequest:
    method: str
    path: str
    body: dict[str, Any]
    turn: int | None
    time: float = field(default_factory=time.time)
    headers: dict[str, str] = field(default_factory=dict)  # names in lower case

    @property
    def system(self) -> str:
        system = self.body.get("system", "")
        if isinstance(system, list):
            return "\n".join(b.get("text", "") for b in system if isinstance(b, dict))
        return str(system)

    @property
    def tools(self) -> list[str]:
        return [t.get("name", "") for t in self.body.get("tools", []) if isinstance(t, dict)]

    @property
    def messages(self) -> list[dict[str, Any]]:
        return list(self.body.get("messages", []))

    def texts(self) -> list[str]:
        """Every text (and tool result text) in the request's messages, in order."""
        out: list[str] = []
        for message in self.messages:
            out += _texts(message.get("content"))
        return out

    def last_user_text(self) -> str:
        for message in reversed(self.messages):
            if message.get("role") == "user":
                return "\n".join(_texts(message.get("content")))
        return ""


def _texts(content: Any) -> list[str]:
    if isinstance(content, str):
        return [content]
    out: list[str] = []
    if isinstance(content, list):
        for block in content:
            if not isinstance(block, dict):
                continue
            if block.get("type") == "text":
                out.append(str(block.get("text", "")))
            elif block.get("type") == "tool_result":
                out += _texts(block.get("content"))
    return out


def _as_turn(item: TurnLike) -> Turn:
    if isinstance(item, Turn):
        return item
    if isinstance(item, Reply | ToolCall):
        return Turn([item])
    return Turn(list(item))


class Scenario:
    """The scripted assistant turns, in order; after the last, a short closing reply."""

    def __init__(self, turns: Sequence[TurnLike] = (), final: str = "Done.") -> None:
        self.turns = [_as_turn(t) for t in turns]
        self.final = final

    def turn(self, index: int) -> Turn:
        if index < len(self.turns):
            return self.turns[index]
        return Turn([Reply(self.final)])

    @classmethod
    def from_data(cls, data: Any) -> Scenario:
        """Build from a list of turns or {"turns": [...], "final": "..."} (YAML/JSON shape).

        A turn is {"text": ...} or {"tool": NAME, "input": {...}} or {"blocks": [...]},
        with optional chunks, delay, first_delay, disconnect_after, disconnect_times and
        fail: {status, times, message}.
        """
        if isinstance(data, dict):
            turns, final = data.get("turns", []), str(data.get("final", "Done."))
        else:
            turns, final = data, "Done."
        return cls([_turn_from_data(t) for t in turns], final=final)

    @classmethod
    def from_file(cls, path: str | Path) -> Scenario:
        text = Path(path).read_text(encoding="utf-8")
        if str(path).endswith((".yaml", ".yml")):
            import yaml

            return cls.from_data(yaml.safe_load(text))
        return cls.from_data(json.loads(text))


def _block_from_data(data: dict[str, Any]) -> Block:
    if "tool" in data:
        return ToolCall(str(data["tool"]), dict(data.get("input", {})), data.get("id"))
    return Reply(str(data.get("text", "")))


def _turn_from_data(data: dict[str, Any]) -> Turn:
    blocks = [_block_from_data(b) for b in data["blocks"]] if "blocks" in data else [
        _block_from_data(data)
    ]
    fail = data.get("fail")
    return Turn(
        blocks,
        chunks=int(data.get("chunks", 1)),
        delay=float(data.get("delay", 0.0)),
        first_delay=float(data.get("first_delay", 0.0)),
        failure=Failure(**fail) if isinstance(fail, dict) else None,
        disconnect_after=data.get("disconnect_after"),
        disconnect_times=int(data.get("disconnect_times", 1)),
    )


def split_text(text: str, chunks: int) -> list[str]:
    if chunks <= 1 or len(text) <= 1:
        return [text]
    size = max(1, -(-len(text) // chunks))
    return [text[i : i + size] for i in range(0, len(text), size)]


def count_assistant_messages(body: dict[str, Any]) -> int:
    return sum(1 for m in body.get("messages", []) if m.get("role") == "assistant")


class _Disconnect(Exception):
    pass


class FakeAnthropic:
    """The scripted Messages API server. Use as a context manager or call start()/stop()."""

    def __init__(self, scenario: Scenario | Sequence[TurnLike] | None = None,
                 host: str = "127.0.0.1", port: int = 0) -> None:
        if scenario is None:
            scenario = Scenario()
        self.scenario = scenario if isinstance(scenario, Scenario) else Scenario(scenario)
        self.requests: list[RecordedRequest] = []
        self._lock = threading.Lock()
        self._served_failures: dict[int, int] = {}
        self._served_disconnects: dict[int, int] = {}
        self._ids = itertools.count(1)
        self.host = host
        self._server = ThreadingHTTPServer((host, port), _handler_for(self))
        self._server.daemon_threads = True
        self._thread: threading.Thread | None = None

    @property
    def port(self) -> int:
        return int(self._server.server_address[1])

    @property
    def url(self) -> str:
        return f"http://{self.host}:{self.port}"

    def env(self) -> dict[str, str]:
        """Environment that points the Claude CLI at this server."""
        return {"ANTHROPIC_BASE_URL": self.url, "ANTHROPIC_API_KEY": DUMMY_KEY}

    def start(self) -> FakeAnthropic:
        self._thread = threading.Thread(target=self._server.serve_forever, args=(0.05,),
                                        name="fake-anthropic", daemon=True)
        self._thread.start()
        return self

    def stop(self) -> None:
        self._server.shutdown()
        self._server.server_close()

    def __enter__(self) -> FakeAnthropic:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def agent_requests(self) -> list[RecordedRequest]:
        """The requests of the agent loop (those that offered tools)."""
        with self._lock:
            return [r for r in self.requests if r.turn is not None]

    # -- serving ---------------------------------------------------------------------------

    def _record(self, headers: dict[str, str], method: str, path: str, body: dict[str, Any],
                turn: int | None) -> None:
        with self._lock:
            self.requests.append(RecordedRequest(method, path, body, turn, headers=headers))

    def _take(self, counter: dict[int, int], index: int, times: int) -> bool:
        """True while the scripted event for this turn still has uses left (0 = always)."""
        with self._lock:
            used = counter.get(index, 0)
            if times and used >= times:
                return False
            counter[index] = used + 1
            return True

    def next_message_id(self) -> str:
        return f"msg_scripted_{next(self._ids):04d}_{uuid.uuid4().hex[:8]}"


def _handler_for(api: FakeAnthropic) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"
        server_version = "fake-anthropic/1"

        def log_message(self, format: str, *args: Any) -> None:
            return

        def _headers(self) -> dict[str, str]:
            return {name.lower(): value for name, value in self.headers.items()}

        def do_GET(self) -> None:
            api._record(self._headers(), "GET", self.path, {}, None)
            self._json(200, {})

        def do_HEAD(self) -> None:
            self.send_response(200)
            self.send_header("Content-Length", "0")
            self.end_headers()

        def do_POST(self) -> None:
            length = int(self.headers.get("Content-Length") or 0)
            raw = self.rfile.read(length) if length else b""
            try:
                body = json.loads(raw or b"{}")
            except json.JSONDecodeError:
                self._json(400, _error_body(400, "invalid JSON"))
                return
            path = self.path.split("?", 1)[0]
            if path.endswith("/count_tokens"):
                api._record(self._headers(), "POST", self.path, body, None)
                self._json(200, {"input_tokens": 12})
                return
            if not path.endswith("/v1/messages"):
                api._record(self._headers(), "POST", self.path, body, None)
                self._json(404, _error_body(404, f"no such endpoint {path}"))
                return
            if not body.get("tools"):
                api._record(self._headers(), "POST", self.path, body, None)
                self._reply(body, Turn([Reply("Scripted side reply.")]), None)
                return
            index = count_assistant_messages(body)
            api._record(self._headers(), "POST", self.path, body, index)
            turn = api.scenario.turn(index)
            failure = turn.failure
            if failure and api._take(api._served_failures, index, failure.times):
                self._json(failure.status, _error_body(failure.status, failure.message),
                           retry_header=failure.retry_header)
                return
            self._reply(body, turn, index)

        def _reply(self, body: dict[str, Any], turn: Turn, index: int | None) -> None:
            offered = {t.get("name") for t in body.get("tools", []) if isinstance(t, dict)}
            blocks = _checked_blocks(turn.blocks, offered) if index is not None else turn.blocks
            disconnect_at: int | None = None
            if (index is not None and turn.disconnect_after is not None
                    and api._take(api._served_disconnects, index, turn.disconnect_times)):
                disconnect_at = turn.disconnect_after
            message_id = api.next_message_id()
            model = str(body.get("model", "claude-scripted"))
            if body.get("stream"):
                try:
                    self._stream(message_id, model, blocks, turn, disconnect_at)
                except (_Disconnect, BrokenPipeError, ConnectionResetError):
                    self.close_connection = True
                return
            content = [_block_json(b) for b in blocks]
            self._json(200, {
                "id": message_id, "type": "message", "role": "assistant", "model": model,
                "content": content, "stop_reason": _stop_reason(blocks), "stop_sequence": None,
                "usage": {"input_tokens": 10, "output_tokens": 5},
            })

        def _stream(self, message_id: str, model: str, blocks: list[Block], turn: Turn,
                    disconnect_at: int | None) -> None:
            self.send_response(200)
            self.send_header("Content-Type", "text/event-stream")
            self.send_header("Cache-Control", "no-cache")
            self.send_header("Connection", "close")
            self.end_headers()
            self.close_connection = True
            sent = 0

            def send(event: str, data: dict[str, Any], delay: float = 0.0) -> None:
                nonlocal sent
                if disconnect_at is not None and sent >= disconnect_at:
                    self.wfile.flush()
                    self.connection.shutdown(socket.SHUT_RDWR)
                    raise _Disconnect
                if delay:
                    time.sleep(delay)
                self.wfile.write(f"event: {event}\ndata: {json.dumps(data)}\n\n".encode())
                self.wfile.flush()
                sent += 1

            send("message_start", {"type": "message_start", "message": {
                "id": message_id, "type": "message", "role": "assistant", "model": model,
                "content": [], "stop_reason": None, "stop_sequence": None,
                "usage": {"input_tokens": 10, "output_tokens": 1}}}, turn.first_delay)
            for index, block in enumerate(blocks):
                if isinstance(block, Reply):
                    send("content_block_start", {"type": "content_block_start", "index": index,
                                                 "content_block": {"type": "text", "text": ""}})
                    for piece in split_text(block.text, turn.chunks):
                        send("content_block_delta", {
                            "type": "content_block_delta", "index": index,
                            "delta": {"type": "text_delta", "text": piece}}, turn.delay)
                else:
                    send("content_block_start", {"type": "content_block_start", "index": index,
                                                 "content_block": {"type": "tool_use",
                                                                   "id": _tool_id(block),
                                                                   "name": block.name,
                                                                   "input": {}}})
                    for piece in split_text(json.dumps(block.input), turn.chunks):
                        send("content_block_delta", {
                            "type": "content_block_delta", "index": index,
                            "delta": {"type": "input_json_delta", "partial_json": piece}},
                            turn.delay)
                send("content_block_stop", {"type": "content_block_stop", "index": index})
            send("message_delta", {"type": "message_delta",
                                   "delta": {"stop_reason": _stop_reason(blocks),
                                             "stop_sequence": None},
                                   "usage": {"output_tokens": 5}})
            send("message_stop", {"type": "message_stop"})

        def _json(self, status: int, payload: dict[str, Any], *,
                  retry_header: bool = True) -> None:
            data = json.dumps(payload).encode()
            self.send_response(status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(data)))
            if status >= 400 and retry_header:
                self.send_header("x-should-retry", "true" if status in (429, 529) else "false")
            self.end_headers()
            self.wfile.write(data)

    return Handler


def _tool_id(call: ToolCall) -> str:
    if call.id is None:
        call.id = f"toolu_scripted_{uuid.uuid4().hex[:12]}"
    return call.id


def _checked_blocks(blocks: list[Block], offered: set[Any]) -> list[Block]:
    """A tool call the request does not offer becomes a text saying so (easier to debug)."""
    out: list[Block] = []
    for block in blocks:
        if isinstance(block, ToolCall) and block.name not in offered:
            out.append(Reply(f"[scripted model: tool {block.name!r} is not offered; offered: "
                             f"{', '.join(sorted(str(o) for o in offered))}]"))
        else:
            out.append(block)
    return out


def _block_json(block: Block) -> dict[str, Any]:
    if isinstance(block, Reply):
        return {"type": "text", "text": block.text}
    return {"type": "tool_use", "id": _tool_id(block), "name": block.name, "input": block.input}


def _stop_reason(blocks: list[Block]) -> str:
    return "tool_use" if any(isinstance(b, ToolCall) for b in blocks) else "end_turn"


def _error_body(status: int, message: str) -> dict[str, Any]:
    kind = {400: "invalid_request_error", 401: "authentication_error", 403: "permission_error",
            404: "not_found_error", 429: "rate_limit_error", 529: "overloaded_error"}.get(
        status, "api_error")
    return {"type": "error", "error": {"type": kind, "message": message}}


def iter_sse(payload: bytes) -> Iterator[tuple[str, dict[str, Any]]]:
    """Parse an SSE body into (event, data) pairs (used by tests of this server)."""
    for frame in payload.decode().split("\n\n"):
        event, data = "", ""
        for line in frame.splitlines():
            if line.startswith("event: "):
                event = line[7:]
            elif line.startswith("data: "):
                data += line[6:]
        if event:
            yield event, json.loads(data)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="fake_anthropic", description=__doc__.splitlines()[0])
    parser.add_argument("scenario", help="YAML or JSON scenario file")
    parser.add_argument("--port", type=int, default=0)
    args = parser.parse_args(argv)
    with FakeAnthropic(Scenario.from_file(args.scenario), port=args.port) as api:
        print(api.url, flush=True)
        with contextlib.suppress(KeyboardInterrupt):
            threading.Event().wait()
    return 0


if __name__ == "__main__":
    sys.exit(main())
