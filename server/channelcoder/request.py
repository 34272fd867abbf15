"""What every front end (CLI, Python API, language server) builds to run a job."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path

from .config import RunOptions


@dataclass
class Request:
    """What every front end builds: a prompt, options, and where it applies."""

    prompt: str
    options: RunOptions = field(default_factory=RunOptions)
    workspace: Path = field(default_factory=Path.cwd)
    buffers: Mapping[str, str] = field(default_factory=dict)
    env: Mapping[str, str] = field(default_factory=dict)
    job_id: str | None = None
