"""channelcoder: Claude Code, run in a Docker sandbox, driven from the editor.

The Python API: `claude()`, `stream()`, `run_sync()`, `session()`; options as in `config.RunOptions`.
"""

from .api import RunKwargs, Session, build_request, claude, run_sync, session, stream
from .claude.events import (
    Changes,
    Error,
    FileChange,
    Init,
    Result,
    Status,
    Text,
    TextDelta,
    ToolResult,
    ToolUse,
)
from .config import DockerOptions, RunOptions, WorktreeOptions
from .errors import ChannelCoderError, SessionError, UsageError
from .jobs import Job
from .request import Request

__all__ = [
    "Changes",
    "ChannelCoderError",
    "DockerOptions",
    "Error",
    "FileChange",
    "Init",
    "Job",
    "Request",
    "Result",
    "RunKwargs",
    "RunOptions",
    "Session",
    "SessionError",
    "Status",
    "Text",
    "TextDelta",
    "ToolResult",
    "ToolUse",
    "UsageError",
    "WorktreeOptions",
    "build_request",
    "claude",
    "run_sync",
    "session",
    "stream",
]
