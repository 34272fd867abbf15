"""The typed event stream every front end consumes.

Events are frozen dataclasses. `to_json()` gives the wire shape used by the LSP notification
`channelcoder/event` and by `channelcoder run --json`: the fields in camelCase plus `type`.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from typing import Any, ClassVar, Literal

Phase = Literal[
    "queued",
    "resolving-image",
    "pulling-image",
    "building-image",
    "starting-sandbox",
    "preparing-worktree",
    "preparing-snapshot",
    "running",
    "retrying",
    "collecting-changes",
]


def _camel(name: str) -> str:
    head, *rest = name.split("_")
    return head + "".join(part.title() for part in rest)


def _jsonable(value: Any) -> Any:
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return {_camel(f.name): _jsonable(getattr(value, f.name)) for f in dataclasses.fields(value)}
    if isinstance(value, tuple | list):
        return [_jsonable(v) for v in value]
    if isinstance(value, dict):
        return {k: _jsonable(v) for k, v in value.items()}
    return value


@dataclass(frozen=True)
class Event:
    type: ClassVar[str] = "event"

    def to_json(self) -> dict[str, Any]:
        data = _jsonable(self)
        assert isinstance(data, dict)
        return {"type": self.type, **data}


@dataclass(frozen=True)
class Status(Event):
    type: ClassVar[str] = "status"
    phase: Phase
    message: str = ""
    log_line: str | None = None


@dataclass(frozen=True)
class Init(Event):
    type: ClassVar[str] = "init"
    session_id: str
    model: str = ""
    tools: tuple[str, ...] = ()
    cwd: str = ""
    claude_version: str = ""
    permission_mode: str = ""
    api_key_source: str = ""


@dataclass(frozen=True)
class TextDelta(Event):
    type: ClassVar[str] = "text-delta"
    text: str
    message_id: str = ""


@dataclass(frozen=True)
class Text(Event):
    """A whole assistant text block. Consumers that printed its deltas skip it."""

    type: ClassVar[str] = "text"
    text: str
    message_id: str = ""
    streamed: bool = False


@dataclass(frozen=True)
class ToolUse(Event):
    type: ClassVar[str] = "tool-use"
    id: str
    name: str
    input: dict[str, Any] = field(default_factory=dict)
    summary: str = ""
    subagent: bool = False


@dataclass(frozen=True)
class ToolResult(Event):
    type: ClassVar[str] = "tool-result"
    tool_use_id: str
    is_error: bool = False
    output: str = ""


@dataclass(frozen=True)
class PermissionDenial:
    tool_name: str
    tool_input: dict[str, Any] = field(default_factory=dict)
    hint: str = ""


@dataclass(frozen=True)
class HostRunChange:
    """A work-tree file the job changed that your machine runs later, and what runs it."""

    path: str
    reason: str


@dataclass(frozen=True)
class Result(Event):
    type: ClassVar[str] = "result"
    ok: bool
    text: str = ""
    session_id: str = ""
    cost_usd: float = 0.0
    duration_ms: int = 0
    num_turns: int = 0
    error: str | None = None
    hint: str = ""
    subtype: str = ""
    exit_code: int | None = None
    api_error_status: int | None = None
    permission_denials: tuple[PermissionDenial, ...] = ()
    runs_on_host: tuple[HostRunChange, ...] = ()


FileStatus = Literal["added", "modified", "deleted", "renamed"]


@dataclass(frozen=True)
class FileChange:
    path: str
    status: FileStatus
    old_path: str | None = None
    new_text: str | None = None
    old_text: str | None = None
    binary: bool = False
    mode_changed: bool = False


@dataclass(frozen=True)
class Changes(Event):
    type: ClassVar[str] = "changes"
    files: tuple[FileChange, ...]
    diff: str = ""
    base: str = ""

    @property
    def paths(self) -> list[str]:
        return [f.path for f in self.files]


@dataclass(frozen=True)
class Error(Event):
    """A ChannelCoderError turned into an event; always the last event of a stream."""

    type: ClassVar[str] = "error"
    code: str
    message: str
    hint: str = ""


@dataclass(frozen=True)
class ApiRetry(Event):
    """The CLI will retry a failed API request (`system/api_retry`). `Job` turns it into a
    `Status("retrying")`, or into an authentication error at once for 401/403."""

    type: ClassVar[str] = "apiRetry"
    attempt: int
    max_retries: int
    delay_s: float
    status: int | None = None
    error: str = ""

    def describe(self) -> str:
        why = f"the API answered {self.status}" if self.status else "the API request failed"
        if self.error:
            why += f" ({self.error})"
        return (f"{why}; retry {self.attempt} of {self.max_retries} "
                f"in {self.delay_s:.1f} s")


@dataclass(frozen=True)
class SecurityEvent(Event):
    """Something a job did that would make the host run code later, and what channelcoder did
    about it. `path` is relative to the workspace (".git/config", "sub/.git")."""

    type: ClassVar[str] = "security"
    path: str
    change: str
    outcome: str

    def describe(self) -> str:
        return f"{self.path}: {self.change} ({self.outcome})"


@dataclass(frozen=True)
class NetworkBlocked(Event):
    """A connection the sandbox's egress proxy refused: where to, and why."""

    type: ClassVar[str] = "networkBlocked"
    host: str
    port: int
    reason: str

    def describe(self) -> str:
        return f"{self.host}:{self.port} ({self.reason})"


ClaudeEvent = Init | TextDelta | Text | ToolUse | ToolResult | Result | ApiRetry
AnyEvent = Status | ClaudeEvent | Changes | SecurityEvent | NetworkBlocked | Error
