"""A git directory of the sandbox's own: it borrows the user's objects, never their control files.

A job's git dir is writable inside the sandbox, and git on the host runs what a repository's
configuration asks for (`core.fsmonitor`, filter drivers, hooks, includes) or follows
(`commondir`). So a job never gets the user's git dir: it gets one channelcoder made (a review
snapshot's, or the mirror of the user's repository an in-place job uses), and before the host
runs git there again, `reclaim` compares its control files with what channelcoder wrote, undoes
every difference and reports each one.
"""

from __future__ import annotations

import contextlib
import os
import stat
from collections.abc import Callable
from pathlib import Path

from .. import hostfs
from ..claude.events import SecurityEvent
from ..errors import WorkspaceError
from .gitcmd import Repo, run_git, split_z

BASE_REF = "refs/channelcoder/base"
SNAPSHOT_GIT_CONFIG = (b"[core]\n\trepositoryformatversion = 0\n\tfilemode = true\n"
                       b"\tbare = false\n\tlogallrefupdates = true\n")
NOT_BROUGHT_BACK = "undone; it never reached your repository"
_POINTERS = ("commondir", "config.worktree", "gitdir")  # files that point git somewhere else
_CONFIG_LIMIT = 1 << 20
_Found = Callable[[str, str], None]


def init_borrowing(git_dir: Path, repo: Repo) -> None:
    """A repository that reads the user's objects (never writes them) and mirrors their HEAD."""
    import shutil

    run_git(["init", "-q", "--template=", str(git_dir.parent)])
    (git_dir / "objects" / "info").mkdir(parents=True, exist_ok=True)
    (git_dir / "objects" / "info" / "alternates").write_bytes(alternates_for(repo))
    exclude = repo.common_dir / "info" / "exclude"
    if exclude.is_file():
        (git_dir / "info").mkdir(exist_ok=True)
        shutil.copyfile(exclude, git_dir / "info" / "exclude")
    point_head(git_dir, repo)


def alternates_for(repo: Repo) -> bytes:
    return f"{repo.objects}\n".encode()


def point_head(git_dir: Path, repo: Repo) -> None:
    if _head_is(git_dir, repo):
        return
    if repo.branch:
        run_git(["symbolic-ref", "HEAD", f"refs/heads/{repo.branch}"], git_dir=git_dir)
        if repo.head:
            run_git(["update-ref", f"refs/heads/{repo.branch}", repo.head], git_dir=git_dir)
    elif repo.head:
        run_git(["update-ref", "--no-deref", "HEAD", repo.head], git_dir=git_dir)


def reclaim(git_dir: Path, config: bytes = SNAPSHOT_GIT_CONFIG, *, alternates: bytes | None = None,
            shown_as: str = ".git", outcome: str = NOT_BROUGHT_BACK) -> list[SecurityEvent]:
    """Make a git dir a job could write safe for git on the host again, and say what the job
    had changed: `config` is rewritten, hooks and pointer files removed, `info/` keeps only
    `exclude`, `objects` and `refs` must be real directories, `HEAD` a regular file."""
    try:
        fd = os.open(git_dir, hostfs.DIRECTORY)
    except OSError as exc:
        raise WorkspaceError(f"the sandbox's git directory {git_dir} is no longer a directory "
                             f"({exc.strerror or exc})", hint="discard it and run the job "
                             "again") from None
    events: list[SecurityEvent] = []

    def found(name: str, change: str) -> None:
        events.append(SecurityEvent(f"{shown_as}/{name}", change, outcome))

    try:
        _reclaim_config(fd, config, found)
        for name in _POINTERS:
            kind = _kind(fd, name)
            if kind is not None:
                found(name, f"created ({_preview(fd, name)})" if kind == "file"
                      else f"created as a {kind}")
                remove_entry(fd, name)
        _reclaim_hooks(fd, found)
        _reclaim_info(fd, found)
        for name in ("objects", "refs"):
            if _kind(fd, name) not in ("directory", None):
                found(name, f"replaced by a {_kind(fd, name)}")
                remove_entry(fd, name)
        objects = hostfs.subdir(fd, "objects")
        try:
            if alternates is not None:
                info = hostfs.subdir(objects, "info")
                try:
                    if _read(info, "alternates") != alternates:
                        found("objects/info/alternates", "changed where git reads objects from")
                        remove_entry(info, "alternates")
                        hostfs.replace_in(info, "alternates", alternates, 0o644)
                finally:
                    os.close(info)
        finally:
            os.close(objects)
        os.close(hostfs.subdir(fd, "refs"))
        try:
            os.close(hostfs.open_in(fd, "HEAD", os.O_RDONLY, stat.S_IFREG))
        except OSError:
            raise WorkspaceError(f"the job replaced HEAD in the sandbox's git directory "
                                 f"{git_dir} with something that is not a file",
                                 hint="discard it and run the job again") from None
    except OSError as exc:
        raise WorkspaceError(f"the job changed the sandbox's git directory {git_dir} in a way "
                             f"channelcoder will not follow ({exc.strerror or exc})",
                             hint="discard it and run the job again") from None
    finally:
        os.close(fd)
    return events


def _reclaim_config(fd: int, config: bytes, found: _Found) -> None:
    kind = _kind(fd, "config")
    current = _read(fd, "config") if kind == "file" else None
    if kind not in ("file", None):
        found("config", f"replaced by a {kind}")
        remove_entry(fd, "config")
    elif current != config:
        found("config", describe_config_change(config, current or b""))
    if current != config:
        hostfs.replace_in(fd, "config", config, 0o644)


def _reclaim_hooks(fd: int, found: _Found) -> None:
    kind = _kind(fd, "hooks")
    if kind is None:
        return
    if kind == "directory":
        hooks = os.open("hooks", hostfs.DIRECTORY, dir_fd=fd)
        try:
            names = sorted(os.listdir(hooks))
        finally:
            os.close(hooks)
        for name in names:
            if not name.endswith(".sample"):  # git never runs these (`git init` writes them)
                found(f"hooks/{name}", "adds a hook git would run")
        if not names:
            return
    else:
        found("hooks", f"created as a {kind}")
    remove_entry(fd, "hooks")


def _reclaim_info(fd: int, found: _Found) -> None:
    """`info/exclude` only hides files from git; anything else there (attributes) goes."""
    kind = _kind(fd, "info")
    if kind is None:
        return
    if kind != "directory":
        found("info", f"replaced by a {kind}")
        remove_entry(fd, "info")
        return
    info = os.open("info", hostfs.DIRECTORY, dir_fd=fd)
    try:
        for name in sorted(os.listdir(info)):
            if name == "exclude" and _kind(info, name) == "file":
                continue
            found(f"info/{name}", "created")
            remove_entry(info, name)
    finally:
        os.close(info)


def describe_config_change(before: bytes, after: bytes) -> str:
    """What a job changed in a git config, by key ("sets core.fsmonitor, include.path")."""
    old, new = _config_entries(before), _config_entries(after)
    if new is None:
        return "changed (unreadable as git config)"
    added = sorted({key for key, value in new if (key, value) not in (old or set())})
    removed = sorted({key for key, value in (old or set()) if (key, value) not in new})
    parts = []
    if added:
        parts.append("sets " + ", ".join(added[:6]) + (" …" if len(added) > 6 else ""))
    if removed:
        parts.append("removes " + ", ".join(removed[:6]) + (" …" if len(removed) > 6 else ""))
    return "; ".join(parts) or "rewritten"


def _config_entries(data: bytes) -> set[tuple[str, str]] | None:
    """Parse a config without following its includes (`--file` reads only that file)."""
    proc = run_git(["config", "--file", "-", "--list", "-z"], stdin=data, check=False)
    if proc.returncode != 0:
        return None
    entries = set()
    for item in split_z(proc.stdout):
        key, _, value = item.partition("\n")
        entries.add((key, value))
    return entries


def _kind(dir_fd: int, name: str) -> str | None:
    try:
        mode = os.stat(name, dir_fd=dir_fd, follow_symlinks=False).st_mode
    except FileNotFoundError:
        return None
    if stat.S_ISREG(mode):
        return "file"
    if stat.S_ISDIR(mode):
        return "directory"
    if stat.S_ISLNK(mode):
        return "link"
    return "special file"


def _read(dir_fd: int, name: str) -> bytes | None:
    try:
        fd = hostfs.open_in(dir_fd, name, os.O_RDONLY, stat.S_IFREG)
    except OSError:
        return None
    try:
        return os.pread(fd, _CONFIG_LIMIT, 0)
    finally:
        os.close(fd)


def _preview(dir_fd: int, name: str) -> str:
    data = (_read(dir_fd, name) or b"").decode("utf-8", "replace").strip()
    first = data.splitlines()[0] if data else ""
    return f"says {first[:80]!r}" if first else "empty"


def remove_entry(dir_fd: int, name: str) -> None:
    """Remove an entry of any type without following it."""
    import shutil

    try:
        mode = os.stat(name, dir_fd=dir_fd, follow_symlinks=False).st_mode
    except FileNotFoundError:
        return
    if stat.S_ISDIR(mode):
        shutil.rmtree(name, dir_fd=dir_fd)
    else:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(name, dir_fd=dir_fd)


def _head_is(git_dir: Path, repo: Repo) -> bool:
    """Does the git dir's HEAD already say what the user's does? (Read from the loose files;
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


def object_mounts(repo: Repo | None) -> tuple[Path, ...]:
    """Host paths a borrowing git dir needs inside a sandbox (read-only): the user's object
    store and the stores it borrows from in turn."""
    if repo is None:
        return ()
    mounts = [repo.objects]
    chained = repo.objects / "info" / "alternates"
    if chained.is_file():
        for line in chained.read_text(encoding="utf-8", errors="replace").splitlines():
            if line.strip() and not line.startswith("#"):
                mounts.append(Path(line.strip()))
    return tuple(mounts)

