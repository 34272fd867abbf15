"""Making a snapshot: one for a job (created, or refreshed for a session's next turn, or taken
from a spare), or a spare ahead of time.

Its *base* is the user's state laid over HEAD (`userstate.py`), committed as
`refs/channelcoder/base`; the tree is checked out from it. A refresh lays what the user changed
since the last base over the tree (the previous turn's edits stay) and makes the user's current
state the new base, so every proposal applies to what the user has now.
"""

from __future__ import annotations

import logging
import os
import shutil
import threading
import time
from collections.abc import Mapping
from pathlib import Path

from ... import hostfs
from ...errors import WorkspaceError
from ...state import HeldLock, write_json
from ..gitcmd import ZERO, Repo, find_repo, git_text, run_git, split_z
from ..gitdir import BASE_REF, init_borrowing, object_mounts, point_head
from .model import Snapshot, from_meta
from .spares import claim_spare, mark_ready, ready_spare, spares_enabled, try_builder
from .store import (
    clear_partial,
    lock_in_use,
    maybe_reap,
    new_id,
    owner,
    read_meta,
    snapshots_dir,
    touch_meta,
)
from .userstate import UserState, user_state

log = logging.getLogger(__name__)

DEFAULT_MAX_BYTES = 512 * 1024 * 1024


def create_snapshot(workspace: Path, buffers: Mapping[str, str] | None = None, *,
                    snapshot_id: str | None = None, max_bytes: int = DEFAULT_MAX_BYTES,
                    session: str | None = None, use_spare: bool = True) -> Snapshot:
    """A snapshot of the workspace as the user has it (see the package doc).

    With `snapshot_id` naming an existing snapshot, refresh it for a new turn; naming a missing
    one, create it under that id (same path as before). Without one, a spare prepared for this
    workspace (`prepare_spare`) is taken and refreshed when there is one — writing only what
    changed instead of every file — and a new spare is prepared in the background. The
    returned snapshot is marked in use until `release()`.
    """
    maybe_reap()
    workspace = workspace.resolve()
    if not workspace.is_dir():
        raise WorkspaceError(f"the workspace {workspace} is not a directory")
    lock: HeldLock | None = None
    snap_id = snapshot_id
    if snap_id is None and use_spare and spares_enabled():
        snap_id, lock = claim_spare(workspace) or (None, None)
    snap_id = snap_id or new_id()
    if not snap_id.replace("-", "").replace("_", "").isalnum():
        raise WorkspaceError(f"invalid snapshot id {snap_id!r}")
    root = snapshots_dir() / snap_id
    lock = lock or lock_in_use(root)
    try:
        meta = read_meta(snap_id)
        repo = find_repo(workspace)
        if meta is not None and (root / "tree").is_dir() and \
                meta.get("workspace") == str(workspace):
            snap = from_meta(snap_id, meta)
            _refresh(snap, repo, buffers or {}, max_bytes)
            touch_meta(root, spare=False, session=session or meta.get("session"))
        else:
            clear_partial(root)
            snap = _create(snap_id, root, workspace, repo, buffers or {}, max_bytes, session)
    except BaseException:
        lock.release()
        raise
    snap._lock = lock
    if snapshot_id is None and use_spare and spares_enabled():
        _spare_in_background(workspace)
    return snap


def prepare_spare(workspace: Path) -> str | None:
    """Make a spare snapshot of the workspace unless one is ready or being made (blocking).

    The language server calls this at start-up (in a worker thread) so the first proposal is
    fast; `create_snapshot` calls it in the background after taking a spare.
    """
    workspace = workspace.resolve()
    builder = try_builder(workspace)
    if builder is None:
        return None
    with builder:
        ready = ready_spare(workspace)
        if ready:
            return ready
        snap = create_snapshot(workspace, use_spare=False)
        touch_meta(snap.root, spare=True)
        snap.release()
        mark_ready(workspace, snap.id)
        return snap.id


def _spare_in_background(workspace: Path) -> None:
    def build() -> None:
        try:
            prepare_spare(workspace)
        except Exception as exc:  # housekeeping: never disturb the job
            log.debug("no spare snapshot for %s: %s", workspace, exc)

    threading.Thread(target=build, name="channelcoder-spare-snapshot", daemon=True).start()


def _create(snap_id: str, root: Path, workspace: Path, repo: Repo | None,
            buffers: Mapping[str, str], max_bytes: int, session: str | None) -> Snapshot:
    tree = root / "tree"
    tree.mkdir(parents=True, exist_ok=True)
    if repo is not None:
        git_dir = tree / ".git"
        source = repo.top
        init_borrowing(git_dir, repo)
        prefix = os.path.relpath(workspace, repo.top) if workspace != repo.top else ""
    else:
        git_dir = root / "git"
        source = workspace
        run_git(["init", "-q", "--bare", "--template=", str(git_dir)])
        run_git(["config", "core.bare", "false"], git_dir=git_dir)
        prefix = ""
    state = user_state(git_dir, source, repo, buffers, workspace, max_bytes)
    parents = ["-p", repo.head] if repo is not None and repo.head else []
    base = git_text(run_git(["commit-tree", state.tree, *parents, "-m",
                             "channelcoder snapshot base"], git_dir=git_dir))
    run_git(["update-ref", BASE_REF, base], git_dir=git_dir)
    collect_index = root / "collect-index"
    run_git(["read-tree", state.tree], git_dir=git_dir, index=collect_index)
    run_git(["-c", "checkout.workers=0", "checkout-index", "-a", "-f", "-u"],
            git_dir=git_dir, work_tree=tree, index=collect_index, cwd=tree)
    if repo is not None:
        _user_index(git_dir, collect_index, state)
    snap = Snapshot(id=snap_id, root=root, tree=tree, workspace=workspace, git_dir=git_dir,
                    base=base, kind="git" if repo is not None else "copy", prefix=prefix,
                    extra_mounts=object_mounts(repo))
    write_json(root / "meta.json", {
        "id": snap_id, "workspace": str(workspace), "kind": snap.kind, "prefix": prefix,
        "base": base, "gitDir": str(git_dir), "created": time.time(), "lastUsed": time.time(),
        "session": session, "owner": owner(),
        "extraMounts": [str(p) for p in snap.extra_mounts],
    })
    return snap


def _refresh(snap: Snapshot, repo: Repo | None, buffers: Mapping[str, str],
             max_bytes: int) -> None:
    """Lay what the user changed since the last base over the tree; their state becomes the base."""
    source = repo.top if repo is not None else snap.workspace
    state = user_state(snap.git_dir, source, repo, buffers, snap.workspace, max_bytes)
    old_tree = git_text(run_git(["rev-parse", f"{snap.base}^{{tree}}"], git_dir=snap.git_dir))
    unchanged = old_tree == state.tree  # the common case: a standby's or a session's next turn
    changed = b"" if unchanged else run_git(
        ["diff-tree", "-r", "-z", "--no-renames", "--name-status", old_tree, state.tree],
        git_dir=snap.git_dir).stdout
    parts = split_z(changed)
    written: list[str] = []
    for status, path in zip(parts[0::2], parts[1::2], strict=False):
        if status == "D":
            hostfs.remove_below(snap.tree, path)
        else:
            written.append(path)
    if written:
        scratch = snap.root / f"refresh-index.{os.getpid()}"
        try:
            run_git(["read-tree", state.tree], git_dir=snap.git_dir, index=scratch)
            run_git(["checkout-index", "-f", "-z", "--stdin"], git_dir=snap.git_dir,
                    work_tree=snap.tree, index=scratch, cwd=snap.tree,
                    stdin=b"\0".join(p.encode("utf-8", "surrogateescape") for p in written))
        finally:
            scratch.unlink(missing_ok=True)
    if not unchanged:
        base = git_text(run_git(["commit-tree", state.tree, "-p", snap.base, "-m",
                                 "channelcoder snapshot base"], git_dir=snap.git_dir))
        run_git(["update-ref", BASE_REF, base], git_dir=snap.git_dir)
        snap.base = base
    if repo is not None:
        point_head(snap.git_dir, repo)
        run_git(["read-tree", repo.head or "--empty"], git_dir=snap.git_dir)
        if state.staged:
            run_git(["update-index", "-z", "--index-info"], git_dir=snap.git_dir,
                    stdin=b"".join(state.staged))
        run_git(["update-index", "-q", "--refresh"], git_dir=snap.git_dir, work_tree=snap.tree,
                cwd=snap.tree, check=False)
    snap.extra_mounts = object_mounts(repo)
    touch_meta(snap.root, base=snap.base, lastUsed=time.time(),
               extraMounts=[str(p) for p in snap.extra_mounts])


def _user_index(git_dir: Path, collect_index: Path, state: UserState) -> None:
    """The snapshot's own index: the checked-out state, except where the user's index differs."""
    index = git_dir / "index"
    shutil.copyfile(collect_index, index)
    lines: list[bytes] = []
    for path, line in state.unstaged.items():
        lines.append(line if line is not None
                     else f"0 {ZERO}\t{path}\0".encode("utf-8", "surrogateescape"))
    if lines:
        run_git(["update-index", "-z", "--index-info"], git_dir=git_dir, stdin=b"".join(lines))

