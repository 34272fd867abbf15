"""The user's files as they are right now, as a tree object in a snapshot's repository: HEAD with
the staged, unstaged and untracked (not ignored) changes laid over it, then the unsaved editor
buffers.

Buffers: a mapping from a path — absolute, or relative to the workspace, or a `file://` URI — to
the buffer's full text. Paths outside the workspace and ignored files are skipped.
"""

from __future__ import annotations

import contextlib
import logging
import os
import tempfile
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import unquote, urlparse

from ...errors import WorkspaceError
from ..gitcmd import ZERO, Repo, git_text, run_git, split_z

log = logging.getLogger(__name__)


@dataclass
class UserState:
    tree: str
    staged: list[bytes] = field(default_factory=list)        # index-info lines of the user's index
    unstaged: dict[str, bytes | None] = field(default_factory=dict)  # path -> user index line


def user_state(git_dir: Path, source: Path, repo: Repo | None, buffers: Mapping[str, str],
               workspace: Path, max_bytes: int) -> UserState:
    """A tree object (in the snapshot's repository) of the user's files as they are right now."""
    index = git_dir / f"user-index.{os.getpid()}"
    state = UserState(tree="")
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
        state.tree = git_text(run_git(["write-tree"], git_dir=git_dir, index=index))
    finally:
        index.unlink(missing_ok=True)
    return state


def _git_changes(repo: Repo, state: UserState) -> list[str]:
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
                 buffers: Mapping[str, str], workspace: Path, state: UserState) -> None:
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
        shas = git_text(run_git(["hash-object", "-w", "--stdin-paths"], git_dir=git_dir,
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

