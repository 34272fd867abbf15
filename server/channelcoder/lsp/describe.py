"""Short, human lines for a job's progress: phase, tool summary, the tail of the latest text."""

from __future__ import annotations

from ..claude.events import (
    AnyEvent,
    Changes,
    Error,
    Init,
    NetworkBlocked,
    Result,
    Status,
    Text,
    TextDelta,
    ToolResult,
    ToolUse,
)

TAIL = 80
PHASES = {
    "queued": "queued",
    "resolving-image": "resolving image",
    "pulling-image": "pulling image",
    "building-image": "building image",
    "starting-sandbox": "starting sandbox",
    "preparing-worktree": "preparing worktree",
    "preparing-snapshot": "preparing snapshot",
    "running": "running",
    "retrying": "retrying",
    "collecting-changes": "collecting changes",
}


class Describer:
    """Turns events into progress messages; keeps the text of the current message."""

    def __init__(self) -> None:
        self._text = ""

    def message(self, event: AnyEvent) -> str | None:
        if isinstance(event, Status):
            label = PHASES.get(event.phase, event.phase)
            detail = (event.log_line or "").strip() or event.message
            if event.phase == "running" and detail.startswith(("claude ", "docker ", "/")):
                detail = ""  # a --verbose command line is not progress
            return f"{label}: {_tail(detail)}" if detail and detail != label else label
        if isinstance(event, Init):
            return f"running ({event.model})" if event.model else "running"
        if isinstance(event, TextDelta):
            self._text += event.text
            return _tail(self._text)
        if isinstance(event, Text):
            if event.streamed:
                self._text = ""
                return None
            self._text = ""
            return _tail(event.text)
        if isinstance(event, ToolUse):
            self._text = ""
            return event.summary or event.name
        if isinstance(event, ToolResult):
            return "tool failed" if event.is_error else None
        if isinstance(event, Changes):
            count = len(event.files)
            return f"{count} file{'s' if count != 1 else ''} changed"
        if isinstance(event, NetworkBlocked):
            return f"network: blocked {event.describe()}"
        if isinstance(event, Result | Error):
            return None
        return None


def _tail(text: str) -> str:
    line = " ".join(text.split())
    return line if len(line) <= TAIL else "…" + line[-(TAIL - 1):]


def end_message(result: Result | None, error: Error | None, elapsed: float,
                changed: int) -> str:
    if error is not None:
        return "cancelled" if error.code == "cancelled" else f"failed: {error.message}"
    if result is None:
        return "cancelled"
    if not result.ok:
        return f"failed: {result.error or 'claude reported an error'}"
    parts = [f"done in {elapsed:.1f} s"]
    if changed:
        parts.append(f"{changed} file{'s' if changed != 1 else ''} changed")
    if result.cost_usd:
        parts.append(f"${result.cost_usd:.4f}")
    return " · ".join(parts)
