"""SandboxManager: the single entry point jobs.py uses to run claude inside Docker."""

from __future__ import annotations

from collections.abc import AsyncIterator

from ..claude.events import Status
from ..errors import SandboxError
from ..runner import ClaudeProcess, LaunchSpec


class SandboxManager:
    _shared: SandboxManager | None = None

    @classmethod
    def shared(cls) -> SandboxManager:
        if cls._shared is None:
            cls._shared = cls()
        return cls._shared

    async def prepare(self, spec: LaunchSpec) -> AsyncIterator[Status]:
        raise SandboxError("Docker mode is not built yet", hint="run without --docker")
        yield

    async def start(self, spec: LaunchSpec) -> ClaudeProcess:
        raise SandboxError("Docker mode is not built yet", hint="run without --docker")
