"""The server's standby sandbox: the `runs.StandbyProvider` the server uses.

It only says which options a standby is for — the workspace's default job options, built the
way an editor command builds a job (editor settings, `.channelcoder/config.toml` filtered by
trust, editor defaults) — and leaves the sandbox work to `sandbox.standby.StandbyPool`.
Nothing here blocks: `start()` returns at once and the pool prepares in the background.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any

from ..backend import Backend
from ..config import RunOptions
from ..request import Request

if TYPE_CHECKING:
    from ..sandbox.warm.standby import StandbyPool

log = logging.getLogger(__name__)


def default_options(workspace: Path, layer: Mapping[str, Any]) -> RunOptions:
    """The options a plain `channelcoder.run` would get here (blocking: reads the project file)."""
    from .job_requests import build_job_request

    built = build_job_request("standby", flags={}, data=None, workspace=workspace,
                              settings=layer, buffers={}, job_id="standby", auto_session=False)
    return built.request.options


class SandboxStandby:
    def __init__(self) -> None:
        self._pool: StandbyPool | None = None
        self._last: tuple[Path, dict[str, Any]] | None = None

    @property
    def pool(self) -> StandbyPool:
        if self._pool is None:
            from ..sandbox.warm.standby import StandbyPool

            self._pool = StandbyPool()
        return self._pool

    def start(self, workspace: Path, layer: Mapping[str, Any]) -> None:
        frozen = dict(layer)
        if self._last == (workspace, frozen):
            return  # initialized and the first workspace/configuration often say the same
        self._last = (workspace, frozen)
        self.pool.start(workspace, lambda root: default_options(root, frozen))

    def stop(self) -> None:
        self._last = None
        if self._pool is not None:
            self._pool.stop()

    def describe(self) -> dict[str, Any]:
        """The standby right now (`StandbyPool.describe`); `off` before any was asked for."""
        return self._pool.describe() if self._pool is not None else {"state": "off"}

    def take(self, request: Request, *, cold: Backend, saved_session: bool) -> Backend | None:
        if self._pool is None or request.options.docker is None:
            return None
        return self._pool.take(request, cold=cold, saved_session=saved_session)

    async def aclose(self) -> None:
        if self._pool is not None:
            await self._pool.aclose()
