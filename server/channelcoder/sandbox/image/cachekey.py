"""The content cache key of a sandbox image.

sha256 over the Dockerfile bytes, the build args, the extra CA bundle and the files its
`COPY`/`ADD` instructions take from the build context (honouring `.dockerignore` with
docker-py's own matcher) — not the whole workspace. A source that cannot be resolved
statically (`COPY .`, a glob, an `$ARG`) makes the key cover the whole context, and says so.
A stat memo (size, mtime, ctime, inode) persisted in the cache dir avoids re-hashing
unchanged files, so a cache hit costs a few `stat` calls.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import re
import shlex
import threading
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ...state import atomic_write, read_json, subdir

KEY_VERSION = "channelcoder-image-key/1"
_INSTRUCTION = re.compile(r"^\s*(COPY|ADD)\s+(.*)$", re.IGNORECASE | re.DOTALL)
_ESCAPE = re.compile(r"^#\s*escape\s*=\s*(\S)\s*$", re.IGNORECASE)
_REMOTE = ("http://", "https://", "git@", "git://")
_MEMO_LIMIT = 20000


@dataclass
class CacheKey:
    digest: str
    whole_context: bool = False
    reason: str = ""
    files: list[str] = field(default_factory=list)

    @property
    def tag(self) -> str:
        return f"channelcoder-auto:{self.digest[:12]}"


def logical_lines(text: str) -> list[str]:
    """Dockerfile instructions with continuations joined and comment lines dropped."""
    lines = text.splitlines()
    escape = "\\"
    for line in lines[:5]:
        match = _ESCAPE.match(line.strip())
        if match:
            escape = match.group(1)
    out: list[str] = []
    current = ""
    for raw in lines:
        stripped = raw.strip()
        if stripped.startswith("#"):
            continue
        if raw.rstrip().endswith(escape):
            current += raw.rstrip()[:-1] + " "
            continue
        current += raw
        if current.strip():
            out.append(current.strip())
        current = ""
    if current.strip():
        out.append(current.strip())
    return out


def copy_sources(dockerfile_text: str) -> tuple[list[str], str]:
    """The context paths COPY/ADD read, and a reason when they cannot be listed statically.

    `--from=` copies (from another stage or image) and remote ADD sources take nothing from
    the context. A non-empty reason means: hash the whole context.
    """
    sources: list[str] = []
    for line in logical_lines(dockerfile_text):
        match = _INSTRUCTION.match(line)
        if not match:
            continue
        args = _split_args(match.group(2))
        flags = [a for a in args if a.startswith("--")]
        if any(f.startswith("--from") for f in flags):
            continue
        operands = [a for a in args if not a.startswith("--")]
        if any(o.startswith("<<") for o in operands):
            continue
        for source in operands[:-1]:
            if source.startswith(_REMOTE):
                continue
            if "$" in source:
                return [], f"{match.group(1).upper()} {source} uses a variable"
            if any(ch in source for ch in "*?["):
                return [], f"{match.group(1).upper()} {source} uses a wildcard"
            normal = os.path.normpath(source.lstrip("/")) if source.strip("/") else "."
            if normal in (".", "") or normal.startswith(".."):
                return [], f"{match.group(1).upper()} {source} copies the whole context"
            sources.append(normal)
    return sources, ""


def _split_args(text: str) -> list[str]:
    text = text.strip()
    if text.startswith("["):
        try:
            parsed = json.loads(text)
        except ValueError:
            parsed = None
        if isinstance(parsed, list) and all(isinstance(p, str) for p in parsed):
            return list(parsed)
    try:
        return shlex.split(text, posix=True)
    except ValueError:
        return text.split()


def dockerignore_patterns(context: Path) -> list[str]:
    """The patterns of context/.dockerignore, as `docker build` reads them."""
    try:
        text = (context / ".dockerignore").read_text(encoding="utf-8")
    except OSError:
        return []
    patterns = []
    for line in text.splitlines():
        line = line.strip()
        if line and not line.startswith("#"):
            patterns.append(line)
    return patterns


class StatMemo:
    """sha256 of files, remembered by (size, mtime_ns, ctime_ns, inode). Thread-safe."""

    def __init__(self, path: Path | None = None) -> None:
        self.path = path
        self._lock = threading.Lock()
        self._entries: dict[str, list[object]] | None = None
        self._dirty = False

    @classmethod
    def default(cls) -> StatMemo:
        return cls(subdir("sandbox", cache=True) / "hash-memo.json")

    def _load(self) -> dict[str, list[object]]:
        if self._entries is None:
            data = read_json(self.path, {}) if self.path is not None else {}
            self._entries = data if isinstance(data, dict) else {}
        return self._entries

    def digest(self, path: Path) -> str:
        st = path.stat()
        stamp = [st.st_size, st.st_mtime_ns, st.st_ctime_ns, st.st_ino]
        key = str(path)
        with self._lock:
            entry = self._load().get(key)
            if isinstance(entry, list) and entry[:4] == stamp and len(entry) == 5:
                return str(entry[4])
        digest = _hash_file(path)
        with self._lock:
            entries = self._load()
            if len(entries) >= _MEMO_LIMIT:
                entries.clear()
            entries[key] = [*stamp, digest]
            self._dirty = True
        return digest

    def save(self) -> None:
        with self._lock:
            if not self._dirty or self.path is None or self._entries is None:
                return
            payload = json.dumps(self._entries, separators=(",", ":"))
            self._dirty = False
        with contextlib.suppress(OSError):
            atomic_write(self.path, payload)


def _hash_file(path: Path) -> str:
    sha = hashlib.sha256()
    with path.open("rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            sha.update(block)
    return sha.hexdigest()


def context_files(context: Path, sources: Iterable[str] | None) -> list[str]:
    """The context-relative files a build reads: the listed sources, or (None) every file."""
    from docker.utils.build import PatternMatcher

    matcher: Any = PatternMatcher(dockerignore_patterns(context))
    found: set[str] = set()
    if sources is None:
        for rel in matcher.walk(str(context)):
            if not os.path.isdir(context / rel) or os.path.islink(context / rel):
                found.add(rel)
        return sorted(found)
    for source in sources:
        path = context / source
        if os.path.isdir(path) and not os.path.islink(path):
            for dirpath, dirnames, filenames in os.walk(path):
                dirnames.sort()
                for name in filenames:
                    rel = os.path.relpath(os.path.join(dirpath, name), context)
                    if not matcher.matches(rel):
                        found.add(rel)
        elif not matcher.matches(source):
            found.add(source)
    return sorted(found)


def compute_key(dockerfile_text: bytes, *, context: Path | None, build_args: Mapping[str, str],
                ca_bundle: bytes | None, memo: StatMemo, dockerfile_name: str = "Dockerfile",
                scan_context: bool = True) -> CacheKey:
    """The cache key. `context=None` (or scan_context=False): nothing from a context."""
    sha = hashlib.sha256()

    def feed(*parts: str) -> None:
        sha.update("\0".join(parts).encode("utf-8", "surrogateescape") + b"\n")

    feed(KEY_VERSION)
    feed("dockerfile", dockerfile_name, hashlib.sha256(dockerfile_text).hexdigest())
    for name in sorted(build_args):
        feed("arg", name, build_args[name])
    feed("ca", hashlib.sha256(ca_bundle).hexdigest() if ca_bundle else "-")
    key = CacheKey(digest="")
    if context is not None and scan_context:
        sources, reason = copy_sources(dockerfile_text.decode("utf-8", "replace"))
        files = context_files(context, None if reason else sources)
        key.whole_context, key.reason = bool(reason), reason
        if not reason:
            missing = [s for s in sources if not os.path.lexists(context / s)]
            for source in missing:
                feed("missing", source)
        for rel in files:
            feed("file", rel, *_file_identity(context / rel, memo))
        key.files = files
    key.digest = sha.hexdigest()
    return key


def _file_identity(path: Path, memo: StatMemo) -> tuple[str, str]:
    try:
        if path.is_symlink():
            return "link", os.readlink(path)
        mode = "x" if os.access(path, os.X_OK) else "-"
        return mode, memo.digest(path)
    except OSError as exc:
        return "unreadable", exc.__class__.__name__


def mentions_claude(dockerfile_text: str) -> bool:
    """A workspace Dockerfile meant for the sandbox: it installs the CLI or says so."""
    if "@anthropic-ai/claude-code" in dockerfile_text:
        return True
    return any(line.strip().lower().replace(" ", "") == "#channelcoder:sandbox"
               for line in dockerfile_text.splitlines())
