"""Review snapshots (apply="propose"): the job works on a private copy; its edits come back as Changes.

A snapshot lives under `<state>/snapshots/<id>/` and never touches the user's working tree:

    meta.json       workspace, base commit, owner, times
    tree/           what the job sees (mounted at /workspace in the sandbox)
    tree/.git       for a git workspace: its own repository borrowing the user's objects
                    (alternates), HEAD and index as the user has them, so `git status` and
                    `git diff` inside show the user's uncommitted work as uncommitted
    git/            for a workspace that is not a git repository: bookkeeping only, outside tree/
    proposal.diff   the last collected diff

Its *base* is the user's state laid over HEAD — staged, unstaged and untracked (not ignored)
files, then the unsaved editor buffers — committed as `refs/channelcoder/base`. `collect()`
compares the tree with the base. A session's next turn refreshes the same snapshot (same path,
so `--resume` finds its transcript): the previous turn's edits stay, files the user changed since
are laid over, and the user's current state becomes the new base — so every proposal applies to
what the user has now.

Buffers: a mapping from a path — absolute, or relative to the workspace, or a `file://` URI — to
the buffer's full text. Paths outside the workspace and ignored files are skipped.
"""

from __future__ import annotations

import contextlib
import fcntl
import hashlib
import logging
import os
import secrets
import shlex
import shutil
import stat
import tempfile
import threading
import time
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Any
from urllib.parse import unquote, urlparse

from .. import hostfs
from ..claude.events import Changes, FileChange, FileStatus
from ..errors import WorkspaceError
from ..sandbox.labels import owner_identity
from ..state import atomic_write, file_lock, read_json, subdir, write_json
from .gitcmd import Repo, find_repo, run_git, split_z

log = logging.getLogger(__name__)

BASE_REF = "refs/channelcoder/base"
DEFAULT_MAX_BYTES = 512 * 1024 * 1024
MAX_TEXT_BYTES = 8 * 1024 * 1024
EXPIRY = 7 * 24 * 3600.0
ZERO = "0" * 40
_REAP_INTERVAL = 3600.0
_STATUS: dict[str, FileStatus] = {"A": "added", "D": "deleted", "R": "renamed", "C": "added"}
_last_reap = 0.0
# A snapshot's .git sits in its tree, writable inside the sandbox, and git on the host runs what
# a repository's configuration asks for (core.fsmonitor, filter drivers, includes) or follows
# (commondir). Before the host runs git there after a job, that configuration is its own again.
SNAPSHOT_GIT_CONFIG = (b"[core]\n\trepositoryformatversion = 0\n\tfilemode = true\n"
                       b"\tbare = false\n\tlogallrefupdates = true\n")
_PLANTABLE = ("commondir", "config.worktree", "gitdir")


def snapshots_dir() -> Path:
    return subdir("snapshots")


def new_id() -> str:
    return f"snap-{secrets.token_hex(6)}"


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
    _lock: IO[str] | None = field(default=None, repr=False)

    @property
    def cwd(self) -> Path:
        """Where the job runs: the workspace's place inside the tree."""
        return self.tree / self.prefix if self.prefix else self.tree

    # -- after the job ---------------------------------------------------------------------

    def collect(self) -> Changes:
        """The job's edits against the base, with per-file old/new text and a unified diff."""
        _reclaim_git_dir(self)
        final = self._write_tree_of_tree()
        raw = run_git(["diff-tree", "-r", "-z", "-M", "--raw", "--no-ext-diff", self.base, final],
                      git_dir=self.git_dir).stdout
        entries = _parse_raw_diff(raw)
        blobs = _read_blobs(self.git_dir, [sha for e in entries for sha in (e.old_sha, e.new_sha)
                                           if sha != ZERO])
        files = tuple(self._file_change(e, blobs) for e in entries)
        diff = run_git(["diff-tree", "-p", "-M", "--no-color", "--no-ext-diff", "--src-prefix=a/",
                        "--dst-prefix=b/", self.base, final],
                       git_dir=self.git_dir).stdout.decode("utf-8", "replace")
        patch = diff.encode("utf-8", "replace")
        if any(f.binary for f in files):
            patch = run_git(["diff-tree", "-p", "-M", "--binary", "--full-index", "--no-color",
                             "--no-ext-diff", "--src-prefix=a/", "--dst-prefix=b/", self.base,
                             final], git_dir=self.git_dir).stdout
        with contextlib.suppress(OSError):
            (self.root / "proposal.diff").write_bytes(patch)
        _touch_meta(self.root, lastUsed=time.time(), result=final)
        return Changes(files=files, diff=diff, base=self.id)

    def _write_tree_of_tree(self) -> str:
        """Hash the tree as it is now (ignored files excluded) into a tree object."""
        index = self.root / "collect-index"
        scratch = self.root / f"collect-index.{os.getpid()}"
        if index.exists():
            shutil.copyfile(index, scratch)
        try:
            run_git(["add", "-A", "--", "."], git_dir=self.git_dir, work_tree=self.tree,
                    index=scratch, cwd=self.tree)
            tree = _stdout(run_git(["write-tree"], git_dir=self.git_dir, index=scratch))
            os.replace(scratch, index)
        finally:
            scratch.unlink(missing_ok=True)
        return tree

    def _file_change(self, entry: _RawEntry, blobs: Mapping[str, bytes]) -> FileChange:
        old = blobs.get(entry.old_sha) if entry.old_sha != ZERO else None
        new = blobs.get(entry.new_sha) if entry.new_sha != ZERO else None
        old_text, old_binary = _as_text(old, entry.old_mode)
        new_text, new_binary = _as_text(new, entry.new_mode)
        status = _STATUS.get(entry.status, "modified")
        mode_changed = entry.old_mode not in ("000000", entry.new_mode) and \
            entry.new_mode != "000000"
        return FileChange(
            path=self._user_relative(entry.path),
            status=status,
            old_path=self._user_relative(entry.old_path) if entry.old_path else None,
            new_text=new_text,
            old_text=old_text,
            binary=old_binary or new_binary,
            mode_changed=mode_changed,
        )

    def _user_relative(self, tree_path: str) -> str:
        if not self.prefix:
            return tree_path
        return os.path.relpath(tree_path, self.prefix)

    # -- for reviewers (the language server) -----------------------------------------------

    def base_bytes(self, path: str) -> bytes | None:
        """The base content of a workspace-relative path (None when the base lacks it)."""
        rel = os.path.normpath(os.path.join(self.prefix, path)) if self.prefix else path
        _reclaim_git_dir(self)
        proc = run_git(["cat-file", "blob", f"{self.base}:{rel}"], git_dir=self.git_dir,
                       check=False)
        return proc.stdout if proc.returncode == 0 else None

    def base_text(self, path: str) -> str | None:
        data = self.base_bytes(path)
        if data is None:
            return None
        text, binary = _as_text(data, "100644")
        return None if binary else text

    def user_path(self, path: str) -> Path:
        """Where a workspace-relative path of a change lives in the user's workspace."""
        return Path(os.path.normpath(self.workspace / path))

    # -- lifetime ----------------------------------------------------------------------------

    def release(self) -> None:
        """Let go of the in-use lock (the snapshot stays until discarded or expired)."""
        if self._lock is not None:
            with contextlib.suppress(OSError):
                fcntl.flock(self._lock.fileno(), fcntl.LOCK_UN)
            self._lock.close()
            self._lock = None

    def discard(self) -> bool:
        self.release()
        return discard(self.id)


# ---------------------------------------------------------------------------------------------
# Creating and refreshing


def create_snapshot(workspace: Path, buffers: Mapping[str, str] | None = None, *,
                    snapshot_id: str | None = None, max_bytes: int = DEFAULT_MAX_BYTES,
                    session: str | None = None, use_spare: bool = True) -> Snapshot:
    """A snapshot of the workspace as the user has it (see the module doc).

    With `snapshot_id` naming an existing snapshot, refresh it for a new turn; naming a missing
    one, create it under that id (same path as before). Without one, a spare prepared for this
    workspace (`prepare_spare`) is taken and refreshed when there is one — writing only what
    changed instead of every file — and a new spare is prepared in the background. The
    returned snapshot is marked in use until `release()`.
    """
    _maybe_reap()
    workspace = workspace.resolve()
    if not workspace.is_dir():
        raise WorkspaceError(f"the workspace {workspace} is not a directory")
    lock: IO[str] | None = None
    snap_id = snapshot_id
    if snap_id is None and use_spare and spares_enabled():
        snap_id, lock = _claim_spare(workspace) or (None, None)
    snap_id = snap_id or new_id()
    if not snap_id.replace("-", "").replace("_", "").isalnum():
        raise WorkspaceError(f"invalid snapshot id {snap_id!r}")
    root = snapshots_dir() / snap_id
    lock = lock or _lock_shared(root)
    try:
        meta = read_json(root / "meta.json", None)
        repo = find_repo(workspace)
        if isinstance(meta, dict) and meta.get("base") and (root / "tree").is_dir() and \
                meta.get("workspace") == str(workspace):
            snap = _open(snap_id, meta)
            _refresh(snap, repo, buffers or {}, max_bytes)
            _touch_meta(root, spare=False, session=session or meta.get("session"))
        else:
            _clear_partial(root)
            snap = _create(snap_id, root, workspace, repo, buffers or {}, max_bytes, session)
    except BaseException:
        _unlock(lock)
        raise
    snap._lock = lock
    if snapshot_id is None and use_spare and spares_enabled():
        _spare_in_background(workspace)
    return snap


# ---------------------------------------------------------------------------------------------
# Spares: a snapshot made ahead of time, so the next one only writes what changed


def spares_enabled() -> bool:
    return os.environ.get("CHANNELCODER_SPARE_SNAPSHOTS", "1") not in ("0", "false", "no")


def _spare_files(workspace: Path) -> tuple[Path, Path, Path]:
    key = hashlib.sha256(str(workspace).encode("utf-8", "surrogateescape")).hexdigest()[:16]
    base = snapshots_dir()
    return base / f".spare-{key}", base / f".spare-{key}.lock", base / f".spare-{key}.build"


def prepare_spare(workspace: Path) -> str | None:
    """Make a spare snapshot of the workspace unless one is ready or being made (blocking).

    The language server calls this at start-up (in a worker thread) so the first proposal is
    fast; `create_snapshot` calls it in the background after taking a spare.
    """
    workspace = workspace.resolve()
    marker, marker_lock, build_lock = _spare_files(workspace)
    builder = build_lock.open("a+")
    try:
        try:
            fcntl.flock(builder.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            return None
        with file_lock(marker_lock):
            ready = marker.read_text().strip() if marker.exists() else ""
        if ready and (snapshots_dir() / ready / "meta.json").exists():
            return ready
        snap = create_snapshot(workspace, use_spare=False)
        _touch_meta(snap.root, spare=True)
        snap.release()
        with file_lock(marker_lock):
            atomic_write(marker, snap.id)
        return snap.id
    finally:
        builder.close()


def _claim_spare(workspace: Path) -> tuple[str, IO[str]] | None:
    marker, marker_lock, _ = _spare_files(workspace)
    with file_lock(marker_lock):
        if not marker.exists():
            return None
        spare = marker.read_text().strip()
        marker.unlink(missing_ok=True)
    root = snapshots_dir() / spare
    if not spare or not (root / "meta.json").exists():
        return None
    return spare, _lock_shared(root)


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
        _init_borrowing(git_dir, repo)
        prefix = os.path.relpath(workspace, repo.top) if workspace != repo.top else ""
    else:
        git_dir = root / "git"
        source = workspace
        run_git(["init", "-q", "--bare", "--template=", str(git_dir)])
        run_git(["config", "core.bare", "false"], git_dir=git_dir)
        prefix = ""
    state = _user_state(git_dir, source, repo, buffers, workspace, max_bytes)
    parents = ["-p", repo.head] if repo is not None and repo.head else []
    base = _stdout(run_git(["commit-tree", state.tree, *parents, "-m", "channelcoder snapshot base"],
                           git_dir=git_dir))
    run_git(["update-ref", BASE_REF, base], git_dir=git_dir)
    collect_index = root / "collect-index"
    run_git(["read-tree", state.tree], git_dir=git_dir, index=collect_index)
    run_git(["-c", "checkout.workers=0", "checkout-index", "-a", "-f", "-u"],
            git_dir=git_dir, work_tree=tree, index=collect_index, cwd=tree)
    if repo is not None:
        _user_index(git_dir, collect_index, state)
    snap = Snapshot(id=snap_id, root=root, tree=tree, workspace=workspace, git_dir=git_dir,
                    base=base, kind="git" if repo is not None else "copy", prefix=prefix,
                    extra_mounts=_extra_mounts(repo))
    write_json(root / "meta.json", {
        "id": snap_id, "workspace": str(workspace), "kind": snap.kind, "prefix": prefix,
        "base": base, "gitDir": str(git_dir), "created": time.time(), "lastUsed": time.time(),
        "session": session, "owner": _owner(),
        "extraMounts": [str(p) for p in snap.extra_mounts],
    })
    return snap


def _refresh(snap: Snapshot, repo: Repo | None, buffers: Mapping[str, str],
             max_bytes: int) -> None:
    """Lay what the user changed since the last base over the tree; their state becomes the base."""
    source = repo.top if repo is not None else snap.workspace
    state = _user_state(snap.git_dir, source, repo, buffers, snap.workspace, max_bytes)
    old_tree = _stdout(run_git(["rev-parse", f"{snap.base}^{{tree}}"], git_dir=snap.git_dir))
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
        base = _stdout(run_git(["commit-tree", state.tree, "-p", snap.base, "-m",
                                "channelcoder snapshot base"], git_dir=snap.git_dir))
        run_git(["update-ref", BASE_REF, base], git_dir=snap.git_dir)
        snap.base = base
    if repo is not None:
        _point_head(snap.git_dir, repo)
        run_git(["read-tree", repo.head or "--empty"], git_dir=snap.git_dir)
        if state.staged:
            run_git(["update-index", "-z", "--index-info"], git_dir=snap.git_dir,
                    stdin=b"".join(state.staged))
        run_git(["update-index", "-q", "--refresh"], git_dir=snap.git_dir, work_tree=snap.tree,
                cwd=snap.tree, check=False)
    snap.extra_mounts = _extra_mounts(repo)
    _touch_meta(snap.root, base=snap.base, lastUsed=time.time(),
                extraMounts=[str(p) for p in snap.extra_mounts])


@dataclass
class _UserState:
    tree: str
    staged: list[bytes] = field(default_factory=list)        # index-info lines of the user's index
    unstaged: dict[str, bytes | None] = field(default_factory=dict)  # path -> user index line


def _user_state(git_dir: Path, source: Path, repo: Repo | None, buffers: Mapping[str, str],
                workspace: Path, max_bytes: int) -> _UserState:
    """A tree object (in the snapshot's repository) of the user's files as they are right now."""
    index = git_dir / f"user-index.{os.getpid()}"
    state = _UserState(tree="")
    try:
        if repo is not None:
            run_git(["read-tree", repo.head or "--empty"], git_dir=git_dir, index=index)
            from_disk = _git_changes(repo, state)
            if state.staged:
                run_git(["update-index", "-z", "--index-info"], git_dir=git_dir, index=index,
                        stdin=b"".join(state.staged))
        else:
            run_git(["read-tree", "--empty"], git_dir=git_dir, index=index)
            from_disk = _plain_files(git_dir, source, max_bytes)
        if from_disk:
            run_git(["update-index", "--add", "--remove", "-z", "--stdin"], git_dir=git_dir,
                    work_tree=source, index=index, cwd=source,
                    stdin=b"\0".join(p.encode("utf-8", "surrogateescape") for p in from_disk))
        _lay_buffers(git_dir, index, source, repo, buffers, workspace, state)
        state.tree = _stdout(run_git(["write-tree"], git_dir=git_dir, index=index))
    finally:
        index.unlink(missing_ok=True)
    return state


def _git_changes(repo: Repo, state: _UserState) -> list[str]:
    """Read the user's status: staged entries go to `state.staged`; returns paths to take from disk."""
    proc = run_git(["status", "--porcelain=v2", "-z", "--untracked-files=all", "--no-renames",
                    "--ignore-submodules=all"], cwd=repo.top)
    from_disk: list[str] = []
    for entry in split_z(proc.stdout):
        kind = entry[:1]
        if kind == "?":
            path = entry[2:]
            if path.endswith("/"):
                continue  # a nested repository: not part of this one
            from_disk.append(path)
            state.unstaged[path] = None
        elif kind == "1":
            fields = entry.split(" ", 8)
            xy, m_index, h_index, path = fields[1], fields[4], fields[7], fields[8]
            line = f"{m_index} {h_index}\t{path}\0".encode("utf-8", "surrogateescape")
            if xy[0] != ".":
                state.staged.append(line if m_index != "000000"
                                    else f"0 {ZERO}\t{path}\0".encode("utf-8", "surrogateescape"))
            if xy[1] != ".":
                from_disk.append(path)
                state.unstaged[path] = line if m_index != "000000" else None
        elif kind == "u":
            path = entry.split(" ", 10)[10]
            from_disk.append(path)
    return from_disk


def _plain_files(git_dir: Path, source: Path, max_bytes: int) -> list[str]:
    """A non-git workspace: every file that a .gitignore would not exclude, within the size cap."""
    proc = run_git(["ls-files", "-o", "--exclude-standard", "-z"], git_dir=git_dir,
                   work_tree=source, cwd=source)
    paths = [p for p in split_z(proc.stdout) if not p.endswith("/")]
    total = 0
    for path in paths:
        with contextlib.suppress(OSError):
            total += os.lstat(source / path).st_size
        if total > max_bytes:
            raise WorkspaceError(
                f"the workspace {source} is too large to snapshot (more than "
                f"{max_bytes // (1024 * 1024)} MB of files that no .gitignore excludes)",
                hint="make it a git repository or add a .gitignore for build output and "
                     "dependencies, or run with apply=direct")
    return paths


def _lay_buffers(git_dir: Path, index: Path, source: Path, repo: Repo | None,
                 buffers: Mapping[str, str], workspace: Path, state: _UserState) -> None:
    if not buffers:
        return
    rels: dict[str, str] = {}
    for key, text in buffers.items():
        rel = _buffer_path(key, workspace, source)
        if rel is None:
            log.debug("buffer %s is outside the workspace; skipped", key)
        else:
            rels[rel] = text
    if rels:
        ignored = run_git(["check-ignore", "-z", "--stdin"], git_dir=git_dir, work_tree=source,
                          index=index, cwd=source, check=False,
                          stdin=b"\0".join(r.encode("utf-8", "surrogateescape") for r in rels))
        for rel in split_z(ignored.stdout):
            rels.pop(rel, None)
    if repo is not None and rels:
        listed = run_git(["ls-files", "-s", "-z", "--", *rels], cwd=repo.top).stdout
        for line in split_z(listed):
            meta, _, path = line.partition("\t")
            mode, sha, _stage = meta.split(" ")
            state.unstaged.setdefault(path, f"{mode} {sha}\t{path}\0".encode(
                "utf-8", "surrogateescape"))
        for rel in rels:
            state.unstaged.setdefault(rel, None)
    if not rels:
        return
    modes = _index_modes(git_dir, index, list(rels))
    with tempfile.TemporaryDirectory(prefix="channelcoder-buffers-") as tmp:
        files = []
        for number, text in enumerate(rels.values()):
            file = Path(tmp) / str(number)
            file.write_bytes(text.encode("utf-8", "surrogateescape"))
            files.append(str(file))
        shas = _stdout(run_git(["hash-object", "-w", "--stdin-paths"], git_dir=git_dir,
                               stdin="\n".join(files).encode())).split()
    lines = [f"{modes.get(rel, '100644')} {sha}\t{rel}\0".encode("utf-8", "surrogateescape")
             for rel, sha in zip(rels, shas, strict=True)]
    run_git(["update-index", "-z", "--index-info"], git_dir=git_dir, index=index,
            stdin=b"".join(lines))


def _buffer_path(key: str, workspace: Path, source: Path) -> str | None:
    """A buffer key as a path relative to `source` (the tree root), or None when outside it."""
    if key.startswith("file://"):
        key = unquote(urlparse(key).path)
    path = Path(key)
    absolute = path if path.is_absolute() else workspace / path
    absolute = Path(os.path.normpath(absolute))
    try:
        rel = absolute.relative_to(source)
    except ValueError:
        try:
            rel = absolute.resolve().relative_to(source)
        except (ValueError, OSError):
            return None
    text = rel.as_posix()
    return None if text in (".", "") or text.startswith("../") or text == ".git" or \
        text.startswith(".git/") else text


def _index_modes(git_dir: Path, index: Path, paths: list[str]) -> dict[str, str]:
    listed = run_git(["ls-files", "-s", "-z", "--", *paths], git_dir=git_dir, index=index).stdout
    modes: dict[str, str] = {}
    for line in split_z(listed):
        meta, _, path = line.partition("\t")
        modes[path] = meta.split(" ")[0]
    return {p: m for p, m in modes.items() if m != "120000"}


def _user_index(git_dir: Path, collect_index: Path, state: _UserState) -> None:
    """The snapshot's own index: the checked-out state, except where the user's index differs."""
    index = git_dir / "index"
    shutil.copyfile(collect_index, index)
    lines: list[bytes] = []
    for path, line in state.unstaged.items():
        lines.append(line if line is not None
                     else f"0 {ZERO}\t{path}\0".encode("utf-8", "surrogateescape"))
    if lines:
        run_git(["update-index", "-z", "--index-info"], git_dir=git_dir, stdin=b"".join(lines))


def _init_borrowing(git_dir: Path, repo: Repo) -> None:
    """A repository that reads the user's objects (never writes them) and mirrors their HEAD."""
    run_git(["init", "-q", "--template=", str(git_dir.parent)])
    (git_dir / "objects" / "info").mkdir(parents=True, exist_ok=True)
    (git_dir / "objects" / "info" / "alternates").write_text(f"{repo.objects}\n", encoding="utf-8")
    exclude = repo.common_dir / "info" / "exclude"
    if exclude.is_file():
        (git_dir / "info").mkdir(exist_ok=True)
        shutil.copyfile(exclude, git_dir / "info" / "exclude")
    _point_head(git_dir, repo)


def _point_head(git_dir: Path, repo: Repo) -> None:
    if _head_is(git_dir, repo):
        return
    if repo.branch:
        run_git(["symbolic-ref", "HEAD", f"refs/heads/{repo.branch}"], git_dir=git_dir)
        if repo.head:
            run_git(["update-ref", f"refs/heads/{repo.branch}", repo.head], git_dir=git_dir)
    elif repo.head:
        run_git(["update-ref", "--no-deref", "HEAD", repo.head], git_dir=git_dir)


def _reclaim_git_dir(snap: Snapshot) -> None:
    if snap.kind == "git":
        _reclaim(snap.git_dir)


def _reclaim(git_dir: Path) -> None:
    """Make a snapshot's .git safe for git on the host again (see SNAPSHOT_GIT_CONFIG)."""
    try:
        fd = os.open(git_dir, hostfs.DIRECTORY)
    except OSError as exc:
        raise WorkspaceError(f"the snapshot's git directory {git_dir} is no longer a directory "
                             f"({exc.strerror or exc})", hint="discard the snapshot and run the "
                             "job again") from None
    try:
        hostfs.replace_in(fd, "config", SNAPSHOT_GIT_CONFIG, 0o644)
        for name in _PLANTABLE:
            with contextlib.suppress(FileNotFoundError):
                os.unlink(name, dir_fd=fd)
        os.close(hostfs.open_in(fd, "HEAD", os.O_RDONLY, stat.S_IFREG))
    except OSError as exc:
        raise WorkspaceError(f"the job changed its snapshot's git directory {git_dir} in a way "
                             f"channelcoder will not follow ({exc.strerror or exc})",
                             hint="discard the snapshot and run the job again") from None
    finally:
        os.close(fd)


def _head_is(git_dir: Path, repo: Repo) -> bool:
    """Does the snapshot's HEAD already say what the user's does? (Read from the loose files;
    anything else — packed refs, a missing file — answers no and git sets it.)"""
    try:
        head = (git_dir / "HEAD").read_text(encoding="utf-8")
        if repo.branch:
            ref = f"refs/heads/{repo.branch}"
            at = (git_dir / ref).read_text(encoding="utf-8").strip() if repo.head else None
            return head == f"ref: {ref}\n" and at == repo.head
        return repo.head is not None and head.strip() == repo.head
    except (OSError, ValueError):
        return False


def _extra_mounts(repo: Repo | None) -> tuple[Path, ...]:
    """Host paths the tree's git needs inside a sandbox: the user's object store (alternates)."""
    if repo is None:
        return ()
    mounts = [repo.objects]
    chained = repo.objects / "info" / "alternates"
    if chained.is_file():
        for line in chained.read_text(encoding="utf-8", errors="replace").splitlines():
            if line.strip() and not line.startswith("#"):
                mounts.append(Path(line.strip()))
    return tuple(mounts)


# ---------------------------------------------------------------------------------------------
# Diff reading


@dataclass(frozen=True)
class _RawEntry:
    old_mode: str
    new_mode: str
    old_sha: str
    new_sha: str
    status: str
    path: str
    old_path: str | None = None


def _parse_raw_diff(raw: bytes) -> list[_RawEntry]:
    parts = split_z(raw)
    entries: list[_RawEntry] = []
    i = 0
    while i < len(parts):
        head = parts[i].lstrip(":").split(" ")
        old_mode, new_mode, old_sha, new_sha, status = head[:5]
        letter = status[:1]
        if letter in ("R", "C"):
            entries.append(_RawEntry(old_mode, new_mode, old_sha, new_sha, letter,
                                     parts[i + 2], parts[i + 1]))
            i += 3
        else:
            entries.append(_RawEntry(old_mode, new_mode, old_sha, new_sha, letter, parts[i + 1]))
            i += 2
    return entries


def _read_blobs(git_dir: Path, shas: Iterable[str]) -> dict[str, bytes]:
    wanted = list(dict.fromkeys(shas))
    if not wanted:
        return {}
    data = run_git(["cat-file", "--batch"], git_dir=git_dir,
                   stdin=("\n".join(wanted) + "\n").encode()).stdout
    blobs: dict[str, bytes] = {}
    pos = 0
    for sha in wanted:
        end = data.index(b"\n", pos)
        header = data[pos:end].decode().split(" ")
        pos = end + 1
        if len(header) < 3 or header[1] == "missing":
            continue
        size = int(header[2])
        blobs[sha] = data[pos:pos + size]
        pos += size + 1
    return blobs


def _as_text(data: bytes | None, mode: str) -> tuple[str | None, bool]:
    """(text, binary): None text for absent, binary or very large content."""
    if data is None:
        return None, False
    if mode == "120000":
        return data.decode("utf-8", "surrogateescape"), False
    if len(data) > MAX_TEXT_BYTES or b"\0" in data[:8192]:
        return None, True
    try:
        return data.decode("utf-8"), False
    except UnicodeDecodeError:
        return None, True


# ---------------------------------------------------------------------------------------------
# Finding, discarding and expiring


def open_snapshot(snapshot_id: str) -> Snapshot | None:
    """A snapshot by id (`Changes.base`), or None when it is gone."""
    if not snapshot_id or "/" in snapshot_id or snapshot_id.startswith("."):
        return None
    meta = read_json(snapshots_dir() / snapshot_id / "meta.json", None)
    if not isinstance(meta, dict) or not meta.get("base"):
        return None
    return _open(snapshot_id, meta)


def _open(snapshot_id: str, meta: dict[str, Any]) -> Snapshot:
    root = snapshots_dir() / snapshot_id
    tree = root / "tree"
    kind = str(meta.get("kind", "git"))
    git_dir = Path(meta.get("gitDir") or (tree / ".git" if kind == "git" else root / "git"))
    if kind == "git":
        _reclaim(git_dir)
    base = _stdout(run_git(["rev-parse", "-q", "--verify", BASE_REF], git_dir=git_dir,
                           check=False)) or str(meta["base"])
    return Snapshot(id=snapshot_id, root=root, tree=tree, workspace=Path(meta["workspace"]),
                    git_dir=git_dir, base=base, kind=kind, prefix=str(meta.get("prefix", "")),
                    extra_mounts=tuple(Path(p) for p in meta.get("extraMounts", [])))


def list_snapshots() -> list[dict[str, Any]]:
    found = []
    for meta_file in snapshots_dir().glob("*/meta.json"):
        meta = read_json(meta_file, None)
        if isinstance(meta, dict):
            found.append(meta)
    return sorted(found, key=lambda m: float(m.get("lastUsed", 0)), reverse=True)


def discard(snapshot_id: str) -> bool:
    """Delete a snapshot (its proposal was applied or rejected). False if gone or in use."""
    if not snapshot_id or "/" in snapshot_id or snapshot_id.startswith("."):
        return False
    root = snapshots_dir() / snapshot_id
    if not root.exists():
        return False
    handle = _try_exclusive(root)
    if handle is None:
        return False
    try:
        shutil.rmtree(root, ignore_errors=True)
    finally:
        handle.close()
    return not root.exists()


def reap_expired(max_age: float = EXPIRY) -> list[str]:
    """Remove snapshots unused for `max_age` seconds (default 7 days) and not in use now."""
    removed: list[str] = []
    cutoff = time.time() - max_age
    for root in snapshots_dir().iterdir():
        if not root.is_dir():
            continue
        meta = read_json(root / "meta.json", None)
        last = float(meta.get("lastUsed", 0)) if isinstance(meta, dict) else _mtime(root)
        if last < cutoff and discard(root.name):
            removed.append(root.name)
    return removed


def _maybe_reap() -> None:
    global _last_reap
    now = time.monotonic()
    if _last_reap and now - _last_reap < _REAP_INTERVAL:
        return
    _last_reap = now
    try:
        reap_expired()
    except OSError as exc:  # never fail a job over housekeeping
        log.debug("snapshot reaping failed: %s", exc)


def _mtime(path: Path) -> float:
    try:
        return path.stat().st_mtime
    except OSError:
        return 0.0


def _lock_shared(root: Path) -> IO[str]:
    root.mkdir(parents=True, exist_ok=True, mode=0o700)
    handle = (root / ".lock").open("a+")
    fcntl.flock(handle.fileno(), fcntl.LOCK_SH)
    return handle


def _try_exclusive(root: Path) -> IO[str] | None:
    try:
        handle = (root / ".lock").open("a+")
    except OSError:
        return None
    try:
        fcntl.flock(handle.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        handle.close()
        return None
    return handle


def _unlock(handle: IO[str]) -> None:
    with contextlib.suppress(OSError):
        fcntl.flock(handle.fileno(), fcntl.LOCK_UN)
    handle.close()


def _clear_partial(root: Path) -> None:
    """Remove what a failed or interrupted creation left behind (the lock file stays)."""
    for child in root.iterdir():
        if child.name == ".lock":
            continue
        if child.is_dir() and not child.is_symlink():
            shutil.rmtree(child, ignore_errors=True)
        else:
            child.unlink(missing_ok=True)


def _touch_meta(root: Path, **changes: Any) -> None:
    meta = read_json(root / "meta.json", None)
    if isinstance(meta, dict):
        meta.update(changes)
        write_json(root / "meta.json", meta)


def _owner() -> dict[str, Any]:
    host, pid, start = owner_identity()
    return {"host": host, "pid": pid, "start": start or ""}


def _stdout(proc: Any) -> str:
    return str(proc.stdout.decode("utf-8", "surrogateescape").strip())


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
