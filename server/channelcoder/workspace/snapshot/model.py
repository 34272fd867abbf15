"""A snapshot as the job and its reviewers use it: where the job runs, the edits it made, the base
text of a file, and its lifetime (held in use, released, discarded); opened again by id."""

from __future__ import annotations

import contextlib
import os
import shlex
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ...claude.events import Changes, SecurityEvent
from ...state import HeldLock
from ..gitcmd import git_text, run_git
from ..gitdir import BASE_REF, reclaim
from ..workplace import PlaceMount
from .changes import as_text, read_changes, write_tree
from .store import discard, read_meta, snapshots_dir, touch_meta


@dataclass
class Snapshot:
    id: str
    root: Path
    tree: Path
    workspace: Path
    git_dir: Path
    base: str
    kind: str = "git"
    prefix: str = ""
    extra_mounts: tuple[Path, ...] = ()
    security_events: list[SecurityEvent] = field(default_factory=list)
    _lock: HeldLock | None = field(default=None, repr=False)

    @property
    def mounts(self) -> tuple[PlaceMount, ...]:
        """The user's object stores its git dir borrows, read-only at their own paths."""
        return tuple(PlaceMount(p, str(p), read_only=True) for p in self.extra_mounts)

    @property
    def cwd(self) -> Path:
        """Where the job runs: the workspace's place inside the tree."""
        return self.tree / self.prefix if self.prefix else self.tree

    # -- after the job ---------------------------------------------------------------------

    def collect(self) -> Changes:
        """The job's edits against the base, with per-file old/new text and a unified diff.
        What the job changed in the snapshot's git dir is undone and kept in `security_events`."""
        self.security_events = self._reclaim()
        final = write_tree(self.root, self.tree, self.git_dir)
        files, diff, patch = read_changes(self.git_dir, self.base, final, self.prefix)
        with contextlib.suppress(OSError):
            (self.root / "proposal.diff").write_bytes(patch)
        touch_meta(self.root, lastUsed=time.time(), result=final)
        return Changes(files=files, diff=diff, base=self.id)

    # -- for reviewers (the language server) -----------------------------------------------

    def base_bytes(self, path: str) -> bytes | None:
        """The base content of a workspace-relative path (None when the base lacks it)."""
        rel = os.path.normpath(os.path.join(self.prefix, path)) if self.prefix else path
        self._reclaim()
        proc = run_git(["cat-file", "blob", f"{self.base}:{rel}"], git_dir=self.git_dir,
                       check=False)
        return proc.stdout if proc.returncode == 0 else None

    def base_text(self, path: str) -> str | None:
        data = self.base_bytes(path)
        if data is None:
            return None
        text, binary = as_text(data, "100644")
        return None if binary else text

    def user_path(self, path: str) -> Path:
        """Where a workspace-relative path of a change lives in the user's workspace."""
        return Path(os.path.normpath(self.workspace / path))

    # -- lifetime ----------------------------------------------------------------------------

    def release(self) -> None:
        """Let go of the in-use lock (the snapshot stays until discarded or expired)."""
        if self._lock is not None:
            self._lock.release()
            self._lock = None

    def discard(self) -> bool:
        self.release()
        return discard(self.id)

    def _reclaim(self) -> list[SecurityEvent]:
        return reclaim(self.git_dir) if self.kind == "git" else []


def open_snapshot(snapshot_id: str) -> Snapshot | None:
    """A snapshot by id (`Changes.base`), or None when it is gone."""
    meta = read_meta(snapshot_id)
    return None if meta is None else from_meta(snapshot_id, meta)


def from_meta(snapshot_id: str, meta: dict[str, Any]) -> Snapshot:
    """The snapshot its meta.json describes (its git directory reclaimed, its base read)."""
    root = snapshots_dir() / snapshot_id
    tree = root / "tree"
    kind = str(meta.get("kind", "git"))
    git_dir = Path(meta.get("gitDir") or (tree / ".git" if kind == "git" else root / "git"))
    if kind == "git":
        reclaim(git_dir)
    base = git_text(run_git(["rev-parse", "-q", "--verify", BASE_REF], git_dir=git_dir,
                            check=False)) or str(meta["base"])
    return Snapshot(id=snapshot_id, root=root, tree=tree, workspace=Path(meta["workspace"]),
                    git_dir=git_dir, base=base, kind=kind, prefix=str(meta.get("prefix", "")),
                    extra_mounts=tuple(Path(p) for p in meta.get("extraMounts", [])))


def apply_hint(snapshot_id: str) -> str | None:
    """A shell command that applies a snapshot's last proposal to the user's files."""
    snap = open_snapshot(snapshot_id)
    diff = snapshots_dir() / snapshot_id / "proposal.diff"
    if snap is None or not diff.is_file():
        return None
    top = snap.workspace
    for _ in Path(snap.prefix).parts if snap.prefix else ():
        top = top.parent
    return shlex.join(["git", "-C", str(top), "apply", str(diff)])
