"""A snapshot's own repository: it borrows the user's objects, mirrors their HEAD, and is made
safe for git on the host again after a job could write to it.

A snapshot's .git sits in its tree, writable inside the sandbox, and git on the host runs what
a repository's configuration asks for (core.fsmonitor, filter drivers, includes) or follows
(commondir). Before the host runs git there after a job, that configuration is its own again.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import stat
from pathlib import Path

from ... import hostfs
from ...errors import WorkspaceError
from ..gitcmd import Repo, run_git

BASE_REF = "refs/channelcoder/base"
SNAPSHOT_GIT_CONFIG = (b"[core]\n\trepositoryformatversion = 0\n\tfilemode = true\n"
                       b"\tbare = false\n\tlogallrefupdates = true\n")
_PLANTABLE = ("commondir", "config.worktree", "gitdir")


def init_borrowing(git_dir: Path, repo: Repo) -> None:
    """A repository that reads the user's objects (never writes them) and mirrors their HEAD."""
    run_git(["init", "-q", "--template=", str(git_dir.parent)])
    (git_dir / "objects" / "info").mkdir(parents=True, exist_ok=True)
    (git_dir / "objects" / "info" / "alternates").write_text(f"{repo.objects}\n", encoding="utf-8")
    exclude = repo.common_dir / "info" / "exclude"
    if exclude.is_file():
        (git_dir / "info").mkdir(exist_ok=True)
        shutil.copyfile(exclude, git_dir / "info" / "exclude")
    point_head(git_dir, repo)


def point_head(git_dir: Path, repo: Repo) -> None:
    if _head_is(git_dir, repo):
        return
    if repo.branch:
        run_git(["symbolic-ref", "HEAD", f"refs/heads/{repo.branch}"], git_dir=git_dir)
        if repo.head:
            run_git(["update-ref", f"refs/heads/{repo.branch}", repo.head], git_dir=git_dir)
    elif repo.head:
        run_git(["update-ref", "--no-deref", "HEAD", repo.head], git_dir=git_dir)


def reclaim(git_dir: Path) -> None:
    """Make a snapshot's .git safe for git on the host again (see the module doc)."""
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


def extra_mounts(repo: Repo | None) -> tuple[Path, ...]:
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
