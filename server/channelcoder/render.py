"""Terminal rendering of a job's events: text on stdout, everything else on stderr.

Assistant text streams to stdout as it arrives (so `channelcoder run … > answer.md` captures the
answer alone); tool calls, status, denials, errors and the footer go to stderr.
"""

from __future__ import annotations

import json
import os
import sys
from typing import TextIO

from .claude.events import (
    AnyEvent,
    Changes,
    Error,
    Init,
    NetworkBlocked,
    Result,
    SecurityEvent,
    Status,
    Text,
    TextDelta,
    ToolResult,
    ToolUse,
)
from .claude.parse import one_line, tool_detail
from .redact import redact


def _color(stream: TextIO) -> bool:
    return stream.isatty() and "NO_COLOR" not in os.environ


class TerminalRenderer:
    def __init__(self, out: TextIO | None = None, err: TextIO | None = None,
                 verbose: bool = False) -> None:
        self.out = out or sys.stdout
        self.err = err or sys.stderr
        self.verbose = verbose
        self._color = _color(self.err)
        self._mid_line = False
        self._cwd = ""
        self._security = 0
        self._blocked = 0

    def _style(self, text: str, code: str) -> str:
        return f"\033[{code}m{text}\033[0m" if self._color else text

    def _note(self, text: str, code: str = "2") -> None:
        self._end_text()
        print(self._style(text, code), file=self.err, flush=True)

    def _end_text(self) -> None:
        if self._mid_line:
            print(file=self.out, flush=True)
            self._mid_line = False

    def render(self, event: AnyEvent) -> None:
        if isinstance(event, TextDelta):
            self.out.write(event.text)
            self.out.flush()
            self._mid_line = not event.text.endswith("\n")
        elif isinstance(event, Text):
            if not event.streamed:
                self._end_text()
                print(event.text, file=self.out, flush=True)
            else:
                self._end_text()
        elif isinstance(event, ToolUse):
            if not event.subagent:
                detail = tool_detail(event.name, event.input, self._cwd)
                self._note(f"→ {event.name}: {detail}" if detail else f"→ {event.name}", "36")
        elif isinstance(event, ToolResult):
            if event.is_error:
                self._note(f"  ✗ {one_line(event.output)}", "33")
        elif isinstance(event, Status):
            self._status(event)
        elif isinstance(event, Init):
            self._cwd = event.cwd
            if self.verbose:
                self._note(f"claude {event.claude_version} · {event.model} · session "
                           f"{event.session_id}")
        elif isinstance(event, Changes):
            self._changes(event)
        elif isinstance(event, Result):
            self._result(event)
        elif isinstance(event, NetworkBlocked):
            self._blocked += 1
            self._note(f"network: blocked {event.describe()}", "33")
        elif isinstance(event, SecurityEvent):
            self._security += 1
            self._note(f"security: {event.describe()}", "31")
        elif isinstance(event, Error):
            self._note(f"error: {event.message}", "31")
            if event.hint:
                self._note(f"  hint: {event.hint}")

    def _status(self, event: Status) -> None:
        if event.phase == "building-image" and event.log_line is not None:
            if self.verbose:
                self._note(f"  │ {event.log_line}")
            return
        if (self.verbose or event.phase in ("building-image", "pulling-image", "retrying")
                or event.message.startswith("notice: ")):
            self._note(f"· {redact(event.message or event.phase)}")

    def _changes(self, event: Changes) -> None:
        if not event.files:
            self._note("no files changed")
            return
        self._note(f"{len(event.files)} file(s) changed:")
        for change in event.files:
            moved = f" (from {change.old_path})" if change.old_path else ""
            flags = "".join(f" [{f}]" for f, on in (("binary", change.binary),
                                                     ("mode", change.mode_changed)) if on)
            self._note(f"  {change.status:8} {change.path}{moved}{flags}")
        if event.base:
            self._proposal(event)

    def _proposal(self, event: Changes) -> None:
        """Propose mode: show the diff; nothing was written to the user's files."""
        self._end_text()
        for line in event.diff.splitlines():
            code = "32" if line.startswith("+") else "31" if line.startswith("-") else \
                "36" if line.startswith("@@") else "1" if line.startswith("diff ") else ""
            print(self._style(line, code) if code else line, file=self.err)
        from .workspace.snapshot import apply_hint

        hint = apply_hint(event.base)
        self._note("proposed, not applied" + (f" — to apply: {hint}" if hint else ""), "33")

    def _result(self, event: Result) -> None:
        self._end_text()
        for item in event.permission_denials:
            detail = tool_detail(item.tool_name, item.tool_input)
            self._note(f"denied: {item.tool_name}({detail}) — allow it with {item.hint}", "33")
        parts = [f"{event.duration_ms / 1000:.1f} s", f"{event.num_turns} turns",
                 f"${event.cost_usd:.4f}"]
        if event.session_id:
            parts.append(f"session {event.session_id}")
        if self._blocked:
            parts.append(f"{self._blocked} connection(s) blocked")
        if self._security:
            parts.append(f"{self._security} security event(s)")
        self._note("── " + " · ".join(parts))
        if event.runs_on_host:
            listed = ", ".join(f"{c.path} ({c.reason})" for c in event.runs_on_host)
            self._note(f"runs on your machine: {listed} — review before you run it", "33")
        if not event.ok:
            self._note(f"error: {event.error or 'the run failed'}", "31")
            if event.hint:
                self._note(f"  hint: {event.hint}")


class JsonRenderer:
    """One JSON event per line on stdout (`--json`)."""

    def __init__(self, out: TextIO | None = None) -> None:
        self.out = out or sys.stdout

    def render(self, event: AnyEvent) -> None:
        print(json.dumps(event.to_json(), ensure_ascii=False), file=self.out, flush=True)
