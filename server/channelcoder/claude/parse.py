"""Incremental parser: the bytes of `claude -p --output-format stream-json --verbose` -> events.

Feed it whatever a read returns; it splits on ``\\n`` only (never on other line breaks that may sit
inside JSON strings), keeps a partial line across reads, and scans each byte once, so a
multi-megabyte tool result costs linear time. Unknown line types and non-JSON lines are skipped.
"""

from __future__ import annotations

import json
import logging
import shlex
from collections.abc import Iterable
from pathlib import PurePosixPath
from typing import Any

from .events import (
    ApiRetry,
    ClaudeEvent,
    Init,
    PermissionDenial,
    Result,
    Text,
    TextDelta,
    ToolResult,
    ToolUse,
)

log = logging.getLogger(__name__)

DEFAULT_MAX_LINE = 256 * 1024 * 1024
SHORT_OUTPUT = 2000
SUMMARY_WIDTH = 100


class StreamParser:
    """Turns stdout bytes into events. One parser per process (or per live-process turn)."""

    def __init__(self, max_line: int = DEFAULT_MAX_LINE) -> None:
        self.max_line = max_line
        self._buffer = bytearray()
        self._scanned = 0
        self._skipping = False
        self._streamed_messages: set[str] = set()
        self._current_message = ""
        self.cwd = ""
        self.session_id = ""
        self.api_error: str | None = None
        self.result: Result | None = None
        self.skipped_lines = 0
        self.bytes_scanned = 0

    def feed(self, data: bytes) -> list[ClaudeEvent]:
        events: list[ClaudeEvent] = []
        self._buffer += data
        while True:
            newline = self._buffer.find(b"\n", self._scanned)
            self.bytes_scanned += (newline + 1 if newline >= 0 else len(self._buffer)) - self._scanned
            if newline < 0:
                self._scanned = len(self._buffer)
                if self._scanned > self.max_line:
                    log.debug("dropping an over-long stdout line (> %d bytes)", self.max_line)
                    self._skipping = True
                    self.skipped_lines += 1
                    del self._buffer[:]
                    self._scanned = 0
                return events
            line = bytes(self._buffer[:newline])
            del self._buffer[: newline + 1]
            self._scanned = 0
            if self._skipping:
                self._skipping = False
                continue
            events += self.parse_line(line)

    def close(self) -> list[ClaudeEvent]:
        """Parse a last line that ended without a newline."""
        line, skipping = bytes(self._buffer), self._skipping
        del self._buffer[:]
        self._scanned = 0
        self._skipping = False
        if skipping or not line.strip():
            return []
        return self.parse_line(line)

    def parse_line(self, line: bytes | str) -> list[ClaudeEvent]:
        if not line.strip():
            return []
        try:
            data = json.loads(line)
        except (ValueError, UnicodeDecodeError):
            self.skipped_lines += 1
            log.debug("skipping a non-JSON stdout line: %.200r", line)
            return []
        if not isinstance(data, dict):
            self.skipped_lines += 1
            return []
        try:
            return list(self._dispatch(data))
        except (KeyError, TypeError, ValueError, AttributeError) as exc:
            self.skipped_lines += 1
            log.debug("skipping a malformed %r line: %s", data.get("type"), exc)
            return []

    # -- line types ------------------------------------------------------------------------

    def _dispatch(self, data: dict[str, Any]) -> Iterable[ClaudeEvent]:
        kind = data.get("type")
        if kind == "system" and data.get("subtype") == "init":
            yield self._init(data)
        elif kind == "system" and data.get("subtype") == "api_retry":
            yield self._retry(data)
        elif kind == "stream_event":
            yield from self._stream_event(data)
        elif kind == "assistant":
            yield from self._assistant(data)
        elif kind == "user":
            yield from self._user(data)
        elif kind == "result":
            yield self._result(data)
        else:
            log.debug("skipping stream-json line of type %r", kind)

    def _init(self, data: dict[str, Any]) -> Init:
        self.cwd = str(data.get("cwd", ""))
        self.session_id = str(data.get("session_id", ""))
        return Init(
            session_id=self.session_id,
            model=str(data.get("model", "")),
            tools=tuple(str(t) for t in data.get("tools", [])),
            cwd=self.cwd,
            claude_version=str(data.get("claude_code_version", "")),
            permission_mode=str(data.get("permissionMode", "")),
            api_key_source=str(data.get("apiKeySource", "")),
        )

    @staticmethod
    def _retry(data: dict[str, Any]) -> ApiRetry:
        status = data.get("error_status")
        return ApiRetry(attempt=int(data.get("attempt") or 0),
                        max_retries=int(data.get("max_retries") or 0),
                        delay_s=float(data.get("retry_delay_ms") or 0) / 1000,
                        status=int(status) if isinstance(status, int | float) else None,
                        error=str(data.get("error") or ""))

    def _stream_event(self, data: dict[str, Any]) -> Iterable[ClaudeEvent]:
        if data.get("parent_tool_use_id"):
            return
        event = data.get("event") or {}
        kind = event.get("type")
        if kind == "message_start":
            self._current_message = str((event.get("message") or {}).get("id", ""))
        elif kind == "content_block_delta":
            delta = event.get("delta") or {}
            if delta.get("type") == "text_delta" and delta.get("text"):
                self._streamed_messages.add(self._current_message)
                yield TextDelta(text=str(delta["text"]), message_id=self._current_message)

    def _assistant(self, data: dict[str, Any]) -> Iterable[ClaudeEvent]:
        message = data.get("message") or {}
        if data.get("error"):
            self.api_error = "\n".join(
                str(b.get("text", "")) for b in message.get("content", []) if b.get("type") == "text"
            ) or str(data["error"])
            return
        subagent = bool(data.get("parent_tool_use_id"))
        message_id = str(message.get("id", ""))
        for block in message.get("content", []):
            kind = block.get("type")
            if kind == "text" and not subagent:
                yield Text(text=str(block.get("text", "")), message_id=message_id,
                           streamed=message_id in self._streamed_messages)
            elif kind == "tool_use":
                name = str(block.get("name", ""))
                tool_input = block.get("input") or {}
                yield ToolUse(id=str(block.get("id", "")), name=name, input=tool_input,
                              summary=summarize_tool(name, tool_input, self.cwd),
                              subagent=subagent)

    def _user(self, data: dict[str, Any]) -> Iterable[ClaudeEvent]:
        content = (data.get("message") or {}).get("content")
        if not isinstance(content, list):
            return
        for block in content:
            if isinstance(block, dict) and block.get("type") == "tool_result":
                yield ToolResult(tool_use_id=str(block.get("tool_use_id", "")),
                                 is_error=bool(block.get("is_error")),
                                 output=shorten(result_text(block.get("content"))))

    def _result(self, data: dict[str, Any]) -> Result:
        is_error = bool(data.get("is_error"))
        text = str(data.get("result", "") or "")
        subtype = str(data.get("subtype", ""))
        error = None
        if is_error:
            error = describe_failure(subtype, text, data.get("api_error_status"),
                                     data.get("num_turns"), self.api_error)
        result = Result(
            ok=not is_error,
            text=text,
            session_id=str(data.get("session_id", "")) or self.session_id,
            cost_usd=float(data.get("total_cost_usd") or 0.0),
            duration_ms=int(data.get("duration_ms") or 0),
            num_turns=int(data.get("num_turns") or 0),
            error=error,
            subtype=subtype,
            api_error_status=_int_or_none(data.get("api_error_status")),
            permission_denials=tuple(denial(d) for d in data.get("permission_denials") or []),
        )
        self.result = result
        return result


def describe_failure(subtype: str, text: str, status: Any, turns: Any, api_error: str | None) -> str:
    if subtype == "error_max_turns":
        return f"stopped after reaching the turn limit ({turns} turns)"
    if subtype == "error_during_execution":
        return text or api_error or "the run failed during execution"
    message = text or api_error or subtype or "the run failed"
    if status and str(status) not in message:
        message = f"{message} (HTTP {status})"
    return message


def _int_or_none(value: Any) -> int | None:
    try:
        return int(value) if value is not None else None
    except (TypeError, ValueError):
        return None


def result_text(content: Any) -> str:
    if isinstance(content, str):
        return content
    if isinstance(content, list):
        return "\n".join(
            str(b.get("text", "")) if isinstance(b, dict) and b.get("type") == "text"
            else f"[{b.get('type', 'block')}]" if isinstance(b, dict) else str(b)
            for b in content
        )
    return "" if content is None else str(content)


def shorten(text: str, limit: int = SHORT_OUTPUT) -> str:
    if len(text) <= limit:
        return text
    return f"{text[:limit]}… ({len(text) - limit} more characters)"


def one_line(text: str, width: int = SUMMARY_WIDTH) -> str:
    first = text.strip().splitlines()[0] if text.strip() else ""
    more = len(text.strip().splitlines()) > 1
    if len(first) > width:
        return first[: width - 1] + "…"
    return first + (" …" if more else "")


def relative(path: str, cwd: str) -> str:
    if cwd and path.startswith(cwd.rstrip("/") + "/"):
        return path[len(cwd.rstrip("/")) + 1 :]
    return path


def tool_detail(name: str, tool_input: dict[str, Any], cwd: str = "") -> str:
    """The interesting argument of a tool call, on one line: 'pytest -q', 'src/a.py'."""
    if name == "Bash":
        return one_line(str(tool_input.get("command", "")))
    for key in ("file_path", "notebook_path", "path"):
        if isinstance(tool_input.get(key), str):
            target = relative(tool_input[key], cwd)
            if name in ("Grep", "Glob") and tool_input.get("pattern"):
                return one_line(f"{tool_input['pattern']} in {target}")
            return target
    for key in ("pattern", "url", "query", "description", "prompt", "skill"):
        if isinstance(tool_input.get(key), str):
            return one_line(tool_input[key])
    for value in tool_input.values():
        if isinstance(value, str):
            return one_line(value)
    return ""


def summarize_tool(name: str, tool_input: dict[str, Any], cwd: str = "") -> str:
    """A tool call's one-line summary: '$ pytest -q', 'Edit src/a.py'."""
    detail = tool_detail(name, tool_input, cwd)
    if name == "Bash":
        return f"$ {detail}"
    return f"{name} {detail}".strip()


def denial(data: dict[str, Any]) -> PermissionDenial:
    name = str(data.get("tool_name", ""))
    tool_input = data.get("tool_input") or {}
    return PermissionDenial(tool_name=name, tool_input=tool_input,
                            hint=allow_hint(name, tool_input))


def allow_hint(name: str, tool_input: dict[str, Any]) -> str:
    """The --tools rule that would have allowed a denied call."""
    rule = name
    if name == "Bash" and isinstance(tool_input.get("command"), str):
        try:
            words = shlex.split(tool_input["command"])
        except ValueError:
            words = tool_input["command"].split()
        if words:
            rule = f"Bash({PurePosixPath(words[0]).name}:*)"
    return f"--tools '{rule}'"
