"""Local trees as content hashes: what to send, the tar that sends it, and applying a diff.

A tree is described by one signature per path, relative to its root: `d` for a directory,
`l:<target>` for a symbolic link, `f:<x>:<sha256>` for a regular file (`x` is 1 when it is
executable). Two trees differ exactly where their signatures do, so a follow-up sends only the
files whose content changed. Other file types (sockets, FIFOs, devices) are never sent.
Writing back to the host goes through `hostfs`: a job's tree may hold links and the host never
follows one.
"""

from __future__ import annotations

import contextlib
import hashlib
import io
import os
import stat
import tarfile
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path

from ... import hostfs

Signatures = dict[str, str]
# (size, mtime_ns, inode) -> signature, so an unchanged file is not read again.
StatMemo = dict[str, tuple[int, int, int, str]]
READ_LIMIT = 1 << 30


def file_signature(data: bytes, executable: bool) -> str:
    return f"f:{int(executable)}:{hashlib.sha256(data).hexdigest()}"


def _hash_file(path: Path) -> str:
    digest = hashlib.sha256()
    fd = os.open(path, os.O_RDONLY | os.O_NOFOLLOW | os.O_CLOEXEC)
    with os.fdopen(fd, "rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def signature(path: Path, memo: StatMemo | None = None, key: str = "") -> str | None:
    """The signature of one path (None: absent, or a type that is never sent)."""
    try:
        info = os.lstat(path)
    except FileNotFoundError:
        return None
    if stat.S_ISDIR(info.st_mode):
        return "d"
    if stat.S_ISLNK(info.st_mode):
        return f"l:{os.readlink(path)}"
    if not stat.S_ISREG(info.st_mode):
        return None
    executable = bool(info.st_mode & 0o100)
    seen = memo.get(key) if memo is not None else None
    if seen is not None and seen[:3] == (info.st_size, info.st_mtime_ns, info.st_ino):
        return seen[3]
    sig = f"f:{int(executable)}:{_hash_file(path)}"
    if memo is not None:
        memo[key] = (info.st_size, info.st_mtime_ns, info.st_ino, sig)
    return sig


def scan(root: Path, *, prefix: str = "", skip: Iterable[str] = (),
         memo: StatMemo | None = None) -> Signatures:
    """Every path below `root` (a directory or a single file) with its signature, named
    `prefix/relative`; paths in `skip` (with everything below them) are left out."""
    skipped = set(skip)
    out: Signatures = {}
    top = signature(root, memo, prefix)
    if top is None:
        return out
    if prefix:
        out[prefix] = top
    if top != "d":
        return out

    def walk(directory: Path, rel: str) -> None:
        try:
            entries = sorted(os.scandir(directory), key=lambda e: e.name)
        except OSError:
            return
        for entry in entries:
            name = f"{rel}/{entry.name}" if rel else entry.name
            if name in skipped:
                continue
            sig = signature(Path(entry.path), memo, name)
            if sig is None:
                continue
            out[name] = sig
            if sig == "d":
                walk(Path(entry.path), name)

    walk(root, prefix)
    return out


@dataclass
class Source:
    """A local path whose content goes to `rel` of a volume ("" is the volume's root)."""

    host: Path
    rel: str
    read_only: bool = False


def _owner(rel: str, sources: list[Source]) -> Source | None:
    """The deepest source `rel` belongs to."""
    best: Source | None = None
    for source in sources:
        if (not source.rel or rel == source.rel or rel.startswith(source.rel + "/")) and (
                best is None or len(source.rel) > len(best.rel)):
            best = source
    return best


def host_path(rel: str, source: Source) -> Path:
    below = rel[len(source.rel):].lstrip("/")
    return source.host / below if below else source.host


def _below(rel: str, top: str) -> bool:
    return (not top and bool(rel)) or rel.startswith(top + "/")


def scan_sources(sources: list[Source], memo: StatMemo | None = None) -> Signatures:
    """The volume's content as the local sources make it: each source's tree at its place,
    without what a deeper source puts there instead."""
    out: Signatures = {}
    for source in sources:
        deeper = [s.rel for s in sources if s is not source and _below(s.rel, source.rel)]
        out.update(scan(source.host, prefix=source.rel, skip=deeper, memo=memo))
    for rel in list(out):  # a nested source's parents exist in the volume
        parts = rel.split("/")
        for i in range(1, len(parts)):
            out.setdefault("/".join(parts[:i]), "d")
    return out


def tar_of(paths: Iterable[str], wanted: Mapping[str, str], sources: list[Source], *,
           uid: int, gid: int, prefix: str = "", into: tarfile.TarFile | None = None) -> bytes:
    """A tar of `paths` (parents first), read from their sources, owned by uid:gid, each named
    `prefix` + its path; added to `into` when given (and b"" returned)."""
    buffer = io.BytesIO()
    with (contextlib.nullcontext(into) if into is not None else
          tarfile.open(fileobj=buffer, mode="w", format=tarfile.PAX_FORMAT)) as tar:
        for rel in sorted(paths, key=lambda p: (p.count("/"), p)):
            sig = wanted[rel]
            info = tarfile.TarInfo(prefix + rel)
            info.uid, info.gid, info.mtime = uid, gid, 0
            if sig == "d":
                info.type, info.mode = tarfile.DIRTYPE, 0o755
                tar.addfile(info)
            elif sig.startswith("l:"):
                info.type, info.linkname, info.mode = tarfile.SYMTYPE, sig[2:], 0o777
                tar.addfile(info)
            else:
                source = _owner(rel, sources)
                assert source is not None
                fd = os.open(host_path(rel, source), os.O_RDONLY | os.O_NOFOLLOW | os.O_CLOEXEC)
                with os.fdopen(fd, "rb") as handle:
                    data = handle.read(READ_LIMIT)
                info.size, info.mode = len(data), 0o755 if sig[2] == "1" else 0o644
                tar.addfile(info, io.BytesIO(data))
    return buffer.getvalue()


@dataclass
class Remote:
    """A volume's content as read back: signatures, and the bytes of regular files."""

    signatures: Signatures = field(default_factory=dict)
    files: dict[str, bytes] = field(default_factory=dict)


def read_tar(data: bytes, top: str) -> Remote:
    """A `get_archive` tar of a volume's mount point `top` (its entries start with `top`; ""
    takes every entry as it is named: the tar of one file)."""
    out = Remote()
    with tarfile.open(fileobj=io.BytesIO(data), mode="r:") as tar:
        for member in tar:
            name = member.name.rstrip("/")
            if top and (name == top or not name.startswith(top + "/")):
                continue
            rel = name[len(top) + 1:] if top else name
            if member.isdir():
                out.signatures[rel] = "d"
            elif member.issym():
                out.signatures[rel] = f"l:{member.linkname}"
            elif member.isfile():
                handle = tar.extractfile(member)
                content = handle.read() if handle is not None else b""
                out.files[rel] = content
                out.signatures[rel] = file_signature(content, bool(member.mode & 0o100))
    return out


@dataclass
class Applied:
    written: list[str] = field(default_factory=list)
    removed: list[str] = field(default_factory=list)
    kept_local: list[str] = field(default_factory=list)  # changed on both sides: the user's kept


def changed(before: Signatures, after: Signatures) -> tuple[list[str], list[str]]:
    """(paths to write, paths to remove) that turn `before` into `after`."""
    write = [p for p, sig in after.items() if before.get(p) != sig]
    remove = [p for p in before if p not in after]
    return write, remove


def apply(remote: Remote, sent: Signatures, sources: list[Source]) -> Applied:
    """Bring the volume's changes (against `sent`, what it held at the start) to the host.
    Read-only sources are never written; a path the user changed meanwhile keeps the user's."""
    result = Applied()
    write, remove = changed(sent, remote.signatures)
    for rel in sorted(write, key=lambda p: (p.count("/"), p)):
        source = _owner(rel, sources)
        if source is None or source.read_only:
            continue
        target = host_path(rel, source)
        if signature(target) not in (sent.get(rel), remote.signatures[rel]):
            result.kept_local.append(rel)
            continue
        if _write(target, source, rel, remote):
            result.written.append(rel)
    for rel in sorted(remove, key=lambda p: (-p.count("/"), p)):
        source = _owner(rel, sources)
        if source is None or source.read_only or rel == source.rel:
            continue
        target = host_path(rel, source)
        if signature(target) != sent.get(rel):
            result.kept_local.append(rel)
            continue
        _remove(target, source)
        result.removed.append(rel)
    return result


def _parent_fd(target: Path, source: Source) -> int:
    """An fd of `target`'s parent, made as real directories below the source's root."""
    below = target.relative_to(source.host).parts[:-1]
    fd = os.open(source.host, hostfs.DIRECTORY)
    try:
        for part in below:
            inner = hostfs.subdir(fd, part)
            os.close(fd)
            fd = inner
    except BaseException:
        os.close(fd)
        raise
    return fd


def _write(target: Path, source: Source, rel: str, remote: Remote) -> bool:
    sig = remote.signatures[rel]
    if target == source.host:
        return False  # a source's root is its mount point: never replaced
    fd = _parent_fd(target, source)
    try:
        name = target.name
        current = signature(target)
        if sig == "d":
            if current != "d":
                with contextlib.suppress(OSError):
                    os.unlink(name, dir_fd=fd)
                os.mkdir(name, 0o755, dir_fd=fd)
        elif sig.startswith("l:"):
            temp = f".{name}.{os.urandom(6).hex()}"
            os.symlink(sig[2:], temp, dir_fd=fd)
            os.replace(temp, name, src_dir_fd=fd, dst_dir_fd=fd)
        else:
            if current == "d":
                return False
            hostfs.replace_in(fd, name, remote.files[rel], 0o755 if sig[2] == "1" else 0o644)
    finally:
        os.close(fd)
    return True


def _remove(target: Path, source: Source) -> None:
    rel = str(target.relative_to(source.host))
    if signature(target) == "d":
        with contextlib.suppress(OSError):
            fd = _parent_fd(target, source)
            try:
                os.rmdir(target.name, dir_fd=fd)
            finally:
                os.close(fd)
        return
    hostfs.remove_below(source.host, rel)
