"""Reading a job's edits out of a snapshot: the tree hashed as it is now, compared with the base
as per-file old/new text, a unified diff, and a patch `git apply` takes."""

from __future__ import annotations

import os
import shutil
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path

from ...claude.events import FileChange, FileStatus
from ..gitcmd import ZERO, git_text, run_git, split_z

MAX_TEXT_BYTES = 8 * 1024 * 1024
_STATUS: dict[str, FileStatus] = {"A": "added", "D": "deleted", "R": "renamed", "C": "added"}


def write_tree(root: Path, tree: Path, git_dir: Path) -> str:
    """Hash `tree` as it is now (ignored files excluded) into a tree object; the index that does
    it is kept in `root` so the next call only rehashes what changed."""
    index = root / "collect-index"
    scratch = root / f"collect-index.{os.getpid()}"
    if index.exists():
        shutil.copyfile(index, scratch)
    try:
        run_git(["add", "-A", "--", "."], git_dir=git_dir, work_tree=tree, index=scratch, cwd=tree)
        written = git_text(run_git(["write-tree"], git_dir=git_dir, index=scratch))
        os.replace(scratch, index)
    finally:
        scratch.unlink(missing_ok=True)
    return written


def read_changes(git_dir: Path, base: str, final: str,
                 prefix: str) -> tuple[tuple[FileChange, ...], str, bytes]:
    """(files, diff, patch) from `base` to `final`, paths relative to the workspace at `prefix`;
    the patch is the diff itself, or a binary one when a file is binary."""
    raw = run_git(["diff-tree", "-r", "-z", "-M", "--raw", "--no-ext-diff", base, final],
                  git_dir=git_dir).stdout
    entries = _parse_raw_diff(raw)
    blobs = _read_blobs(git_dir, [sha for e in entries for sha in (e.old_sha, e.new_sha)
                                  if sha != ZERO])
    files = tuple(_file_change(e, blobs, prefix) for e in entries)
    diff = run_git(["diff-tree", "-p", "-M", "--no-color", "--no-ext-diff", "--src-prefix=a/",
                    "--dst-prefix=b/", base, final],
                   git_dir=git_dir).stdout.decode("utf-8", "replace")
    patch = diff.encode("utf-8", "replace")
    if any(f.binary for f in files):
        patch = run_git(["diff-tree", "-p", "-M", "--binary", "--full-index", "--no-color",
                         "--no-ext-diff", "--src-prefix=a/", "--dst-prefix=b/", base, final],
                        git_dir=git_dir).stdout
    return files, diff, patch


def as_text(data: bytes | None, mode: str) -> tuple[str | None, bool]:
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


def _file_change(entry: _RawEntry, blobs: Mapping[str, bytes], prefix: str) -> FileChange:
    old = blobs.get(entry.old_sha) if entry.old_sha != ZERO else None
    new = blobs.get(entry.new_sha) if entry.new_sha != ZERO else None
    old_text, old_binary = as_text(old, entry.old_mode)
    new_text, new_binary = as_text(new, entry.new_mode)
    status = _STATUS.get(entry.status, "modified")
    mode_changed = entry.old_mode not in ("000000", entry.new_mode) and \
        entry.new_mode != "000000"
    return FileChange(
        path=_user_relative(entry.path, prefix),
        status=status,
        old_path=_user_relative(entry.old_path, prefix) if entry.old_path else None,
        new_text=new_text,
        old_text=old_text,
        binary=old_binary or new_binary,
        mode_changed=mode_changed,
    )


def _user_relative(tree_path: str, prefix: str) -> str:
    return os.path.relpath(tree_path, prefix) if prefix else tree_path
