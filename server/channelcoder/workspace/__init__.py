"""Where a job runs: the workspace itself, a git worktree, or a private snapshot.

- direct (default): the workspace, edited in place.
- `worktree`: a git worktree beside the repository (`worktrees.py`); its common git dir is an
  extra mount so git works inside the sandbox. Kept unless `keep=False` (and clean).
- `apply="propose"`: a snapshot of the workspace (or of the worktree) under the state dir
  (`snapshot/`); its edits come back as a `Changes` event. A session passes the id of its
  previous snapshot so the next turn runs on the same path.
"""

from __future__ import annotations

import os
from functools import partial
from pathlib import Path
from typing import TYPE_CHECKING

import anyio

from ..claude.events import Changes
from ..config import WorktreeOptions
from ..errors import WorkspaceError
from .workplace import Workplace

if TYPE_CHECKING:
    from ..request import Request


async def prepare_workplace(request: Request, job_id: str, *,
                            snapshot_id: str | None = None) -> Workplace:

    workspace = request.workspace
    if not await anyio.to_thread.run_sync(workspace.is_dir):
        raise WorkspaceError(f"the workspace {workspace} is not a directory",
                             hint="run from inside your project, or pass its path")
    workspace = workspace.resolve()
    options = request.options
    place = Workplace(cwd=workspace)
    buffers = request.buffers
    if options.worktree is not None:
        place = await anyio.to_thread.run_sync(_worktree_place, workspace, options.worktree,
                                               abandon_on_cancel=True)
        buffers = {}
    if options.apply == "propose":
        from .snapshot import create_snapshot

        make = partial(create_snapshot, place.cwd, buffers, snapshot_id=snapshot_id,
                       session=options.session)
        snap = await anyio.to_thread.run_sync(make, abandon_on_cancel=True)
        outer_release = place.release
        keep = bool(options.session)

        def release() -> str | None:
            notice = outer_release() if outer_release is not None else None
            snap.release()
            return notice

        def collect() -> Changes:
            changes = snap.collect()
            if not changes.files and not keep:
                snap.discard()
            return changes

        place = Workplace(cwd=snap.cwd, kind="snapshot", read_only_mounts=snap.extra_mounts,
                          collect=collect, release=release, ref=snap.id)
    return place


def _worktree_place(workspace: Path, options: WorktreeOptions) -> Workplace:
    from .gitcmd import require_repo
    from .worktrees import ensure_worktree, release_worktree
    repo = require_repo(workspace, "worktree")
    tree, _created = ensure_worktree(workspace, options)
    prefix = os.path.relpath(workspace, repo.top) if workspace != repo.top else ""
    cwd = tree.path / prefix if prefix else tree.path
    release = None if options.keep else partial(release_worktree, workspace, tree)
    return Workplace(cwd=cwd, kind="worktree", extra_mounts=(repo.common_dir,),
                     release=release, ref=str(tree.path))
