"""Where a job runs: the workspace itself, a git worktree, or a private snapshot.

- direct (default): the workspace, edited in place. In a sandbox, the job's git dir is a mirror
  of the user's (`mirror.py`), checked and brought back after the job.
- `worktree`: a git worktree beside the repository (`worktrees.py`), with a mirror the same way.
  Kept unless `keep=False` (and clean).
- `apply="propose"`: a snapshot of the workspace (or of the worktree) under the state dir
  (`snapshot/`); its edits come back as a `Changes` event. A session passes the id of its
  previous snapshot so the next turn runs on the same path.
"""

from __future__ import annotations

import logging
import os
import threading
from functools import partial
from pathlib import Path
from typing import TYPE_CHECKING

import anyio

from ..claude.events import Changes, HostRunChange
from ..config import WorktreeOptions
from ..errors import WorkspaceError
from .workplace import AfterJob, Workplace

log = logging.getLogger(__name__)

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

        collected: list[Changes] = []

        def collect() -> Changes:
            changes = snap.collect()
            collected.append(changes)
            if not changes.files and not keep:
                snap.discard()
            return changes

        def after_job(root: Path = place.cwd) -> AfterJob:
            from .hostrun import from_changes, hooks_dir_of

            runs = (from_changes(collected[0], hooks_dir_of(root))
                    if collected and collected[0].files else ())
            return AfterJob(events=list(snap.security_events), runs_on_host=runs)

        place = Workplace(cwd=snap.cwd, kind="snapshot", mounts=snap.mounts, collect=collect,
                          after_job=after_job, release=release, ref=snap.id)
    elif options.docker is not None:
        from .mirror import mirror_key

        guard = partial(_with_mirror, place, key=mirror_key(job_id, options.session, workspace),
                        keep=bool(options.session), workspace=workspace)
        place = await anyio.to_thread.run_sync(guard)
    else:
        place = await anyio.to_thread.run_sync(_watched, place)
    return place


def _watched(place: Workplace) -> Workplace:
    """The host-run files of the job's directory are compared after the job."""
    from .hostrun import Watch

    watch = Watch(place.cwd)
    check = place.after_job

    def after_job() -> AfterJob:
        runs: list[tuple[HostRunChange, ...]] = []
        comparing = threading.Thread(target=lambda: runs.append(watch.changes()),
                                     name="channelcoder-hostrun", daemon=True)
        comparing.start()  # git's two walks of the tree, side by side
        try:
            found = check() if check is not None else AfterJob()
        finally:
            comparing.join()
        found.runs_on_host = runs[0] if runs else ()
        return found

    place.after_job = after_job
    return place


def _with_mirror(place: Workplace, *, key: str, keep: bool, workspace: Path) -> Workplace:
    """The job works in the user's repository: its sandbox gets a git dir of its own."""
    from .mirror import check_new_repository, open_mirror, recover

    before = recover(place.cwd.resolve())
    mirror = open_mirror(place.cwd, key, keep=keep, workspace=workspace)
    if mirror is None:
        place.before_job = before
        if not os.path.lexists(place.cwd / ".git"):
            place.after_job = partial(check_new_repository, place.cwd)
        return _watched(place)
    try:
        mirror.wait_filled()
        if not mirror.filled:
            before.events += mirror.fill()
    except BaseException:
        mirror.release()
        raise
    checked: list[AfterJob] = []
    outer_release = place.release

    def after_job() -> AfterJob:
        if checked:
            return AfterJob()
        checked.append(mirror.bring_back())
        return checked[0]

    def release() -> str | None:
        notices: list[str] = []
        try:
            if not checked:
                late = after_job()
                for event in late.events:
                    log.warning("security: %s", event.describe())
                notices += [f"security: {e.describe()}" for e in late.events] + late.notices
        finally:
            mirror.release()
        outer = outer_release() if outer_release is not None else None
        return "; ".join([*notices, *([outer] if outer else [])]) or None

    return _watched(Workplace(cwd=place.cwd, kind=place.kind, mounts=mirror.mounts(),
                              after_job=after_job, before_job=before, release=release,
                              ref=place.ref))


def _worktree_place(workspace: Path, options: WorktreeOptions) -> Workplace:
    from .gitcmd import require_repo
    from .worktrees import ensure_worktree, release_worktree
    repo = require_repo(workspace, "worktree")
    tree, _created = ensure_worktree(workspace, options)
    prefix = os.path.relpath(workspace, repo.top) if workspace != repo.top else ""
    cwd = tree.path / prefix if prefix else tree.path
    release = None if options.keep else partial(release_worktree, workspace, tree)
    return Workplace(cwd=cwd, kind="worktree", release=release, ref=str(tree.path))
