"""What every front end (CLI, Python API, language server) builds to run a job."""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal

from .config import RunOptions

NetworkAnswer = Literal["job", "always", "deny"]
# Asks the user whether the sandbox may reach host:port (an editor's prompt); called from the
# egress proxy's own thread, so it must be thread-safe and return an awaitable of that thread.
AskNetwork = Callable[[str, int], Awaitable[NetworkAnswer]]


@dataclass
class Request:
    """What every front end builds: a prompt, options, and where it applies."""

    prompt: str
    options: RunOptions = field(default_factory=RunOptions)
    workspace: Path = field(default_factory=Path.cwd)
    buffers: Mapping[str, str] = field(default_factory=dict)
    env: Mapping[str, str] = field(default_factory=dict)
    job_id: str | None = None
    ask_network: AskNetwork | None = None
