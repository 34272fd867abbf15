"""Where a job runs: the workspace itself, a git worktree, or a private snapshot (DESIGN §6)."""

from __future__ import annotations

from typing import TYPE_CHECKING

import anyio

from ..errors import WorkspaceError

if TYPE_CHECKING:
    from ..jobs import Request, Workplace


async def prepare_workplace(request: Request, job_id: str) -> Workplace:
    from ..jobs import Workplace

    workspace = request.workspace
    if not await anyio.to_thread.run_sync(workspace.is_dir):
        raise WorkspaceError(f"the workspace {workspace} is not a directory",
                             hint="run from inside your project, or pass its path")
    return Workplace(cwd=workspace.resolve())
