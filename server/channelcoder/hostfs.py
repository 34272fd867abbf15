"""Host-side file access in directories a sandboxed job can write.

A job may leave anything in its read-write mounts for the host to find later: a link to a host
file, a FIFO, a directory swapped for a link. Everything here works through directory file
descriptors with O_NOFOLLOW, checks the type of what it opened, and replaces files by renaming
a new one into place — so the host never writes through, reads through or blocks on what a job
planted. Each function raises OSError when the entry is not what it should be.
"""

from __future__ import annotations

import contextlib
import errno
import os
import stat
from pathlib import Path

DIRECTORY = os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW | os.O_CLOEXEC


def open_in(directory: Path | int, name: str, flags: int, kind: int) -> int:
    """Open `name` in a directory (a path opened without following it, or an fd) as a file of
    type `kind` (`stat.S_IFREG`, `stat.S_IFIFO`); never blocks on a FIFO."""
    dir_fd = os.open(directory, DIRECTORY) if isinstance(directory, Path) else directory
    try:
        fd = os.open(name, flags | os.O_NOFOLLOW | os.O_NONBLOCK | os.O_CLOEXEC, dir_fd=dir_fd)
    finally:
        if isinstance(directory, Path):
            os.close(dir_fd)
    if stat.S_IFMT(os.fstat(fd).st_mode) != kind:
        os.close(fd)
        raise OSError(errno.EPERM, f"{name} is not the file channelcoder made")
    return fd


def read_regular(path: Path, limit: int) -> bytes:
    """A regular file's bytes (at most `limit`), not through a link."""
    fd = open_in(path.parent, path.name, os.O_RDONLY, stat.S_IFREG)
    try:
        if os.fstat(fd).st_size > limit:
            raise OSError(errno.EFBIG, f"{path} is larger than {limit} bytes")
        return os.pread(fd, limit, 0)
    finally:
        os.close(fd)


def subdir(dir_fd: int, name: str) -> int:
    """An fd of the real directory `name` (made when missing; a link or file there is removed)."""
    for _ in range(3):
        try:
            return os.open(name, DIRECTORY, dir_fd=dir_fd)
        except FileNotFoundError:
            with contextlib.suppress(FileExistsError):
                os.mkdir(name, 0o700, dir_fd=dir_fd)
        except OSError as exc:
            if exc.errno not in (errno.ELOOP, errno.ENOTDIR):
                raise
            os.unlink(name, dir_fd=dir_fd)
    raise OSError(errno.EAGAIN, f"{name} keeps changing")


def replace_in(dir_fd: int, name: str, data: bytes, mode: int = 0o600) -> None:
    """Write a new file and rename it over `name` (a link there is replaced, not followed)."""
    temp = f".{name}.{os.urandom(6).hex()}"
    fd = os.open(temp, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW | os.O_CLOEXEC, mode,
                 dir_fd=dir_fd)
    try:
        with os.fdopen(fd, "wb") as handle:
            handle.write(data)
        os.replace(temp, name, src_dir_fd=dir_fd, dst_dir_fd=dir_fd)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(temp, dir_fd=dir_fd)
        raise


def open_below(root: Path, parts: list[str]) -> int:
    """An fd of the directory `root/parts…`, walking down without following links (OSError when
    one of them is not a real directory)."""
    fd = os.open(root, DIRECTORY)
    try:
        for part in parts:
            below = os.open(part, DIRECTORY, dir_fd=fd)
            os.close(fd)
            fd = below
    except BaseException:
        os.close(fd)
        raise
    return fd


def remove_below(root: Path, path: str) -> None:
    """Remove the file (or link) `path` below `root`, walking down without following links.
    Nothing happens when it is gone, a directory, or not under real directories of `root`."""
    *parents, name = path.split("/")
    try:
        fd = open_below(root, parents)
    except OSError:
        return
    try:
        if not stat.S_ISDIR(os.stat(name, dir_fd=fd, follow_symlinks=False).st_mode):
            os.unlink(name, dir_fd=fd)
    except OSError:
        pass
    finally:
        os.close(fd)
