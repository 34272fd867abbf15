"""Claude's config dir inside the sandbox: one per session, else one per job.

It lives under the state dir, is mounted read-write at `mounts.CONFIG_DIR` and set as
`CLAUDE_CONFIG_DIR`, so transcripts survive the container and `--resume` works in the next
one (same dir, same `/workspace` cwd). Credentials: API key / token env first; otherwise a
0600 copy of the host's `.credentials.json`, copied back after the run when the CLI refreshed
it. The user's `CLAUDE.md`, `commands/` and `agents/` are copied in. Nothing here is logged.

The dir is writable from inside the sandbox, so a job may leave links (or anything else) in
it for the next turn: the host never follows a link there. Copies go in through directory fds
with O_NOFOLLOW and are renamed into place; the refreshed credentials are read the same way.
"""

from __future__ import annotations

import contextlib
import hashlib
import os
import re
import time
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

from ... import hostfs
from ...state import atomic_write, subdir

TOKEN_ENV = ("ANTHROPIC_API_KEY", "CLAUDE_CODE_OAUTH_TOKEN", "ANTHROPIC_AUTH_TOKEN")
CREDENTIALS = ".credentials.json"
USER_FILES = ("CLAUDE.md", "commands", "agents")
JOB_DIR_MAX_AGE = 7 * 24 * 3600
MAX_CREDENTIALS_BYTES = 1 << 20
MAX_COPY_DEPTH = 8
_SAFE = re.compile(r"[^A-Za-z0-9_.-]")


def host_claude_dir() -> Path:
    explicit = os.environ.get("CLAUDE_CONFIG_DIR")
    return Path(explicit).expanduser() if explicit else Path.home() / ".claude"


def credential_source(env: Mapping[str, str]) -> str:
    """Which credential the sandbox will use, by name only (for `doctor` and messages)."""
    for name in TOKEN_ENV:
        if env.get(name):
            return f"{name} (environment)"
    if (host_claude_dir() / CREDENTIALS).is_file():
        return f"{host_claude_dir() / CREDENTIALS} (copied into the sandbox, 0600)"
    return "none"


def _name(text: str) -> str:
    clean = _SAFE.sub("_", text)[:40]
    return f"{clean}-{hashlib.sha256(text.encode()).hexdigest()[:8]}"


def config_dir_for(*, session: str | None, workspace: Path, job_id: str, resume: str | None,
                   explicit: Path | None = None) -> Path:
    """The host directory to mount as CLAUDE_CONFIG_DIR for this run.

    A named session keeps one per workspace (its turns are serialized by `sessions`); a
    `--resume ID` without a session finds the dir holding that transcript; else one per job.
    """
    if explicit is not None:
        return explicit
    root = subdir("sandbox/claude")
    if session:
        return root / "sessions" / f"{_name(session)}-{_name(str(workspace))[-8:]}"
    if resume:
        found = find_transcript(resume)
        if found is not None:
            return found
    return root / "jobs" / _name(job_id)


def find_transcript(session_id: str) -> Path | None:
    """The config dir holding the transcript of `session_id`, so --resume finds it."""
    if not re.fullmatch(r"[A-Za-z0-9-]{8,80}", session_id):
        return None
    root = subdir("sandbox/claude")
    for kind in ("sessions", "jobs"):
        base = root / kind
        if not base.is_dir():
            continue
        for candidate in base.iterdir():
            if any((candidate / "projects").glob(f"*/{session_id}.jsonl")):
                return candidate
    return None


def prune_job_dirs(max_age: float = JOB_DIR_MAX_AGE) -> None:
    base = subdir("sandbox/claude") / "jobs"
    if not base.is_dir():
        return
    cutoff = time.time() - max_age
    for candidate in base.iterdir():
        with contextlib.suppress(OSError):
            if candidate.stat().st_mtime < cutoff:
                import shutil

                shutil.rmtree(candidate, ignore_errors=True)


@dataclass
class ConfigDir:
    """A prepared config dir; `finish()` copies refreshed credentials back to the host."""

    path: Path
    copied_credentials: bytes | None = None

    def finish(self) -> None:
        if self.copied_credentials is None:
            return
        host = host_claude_dir() / CREDENTIALS
        try:
            now = hostfs.read_regular(self.path / CREDENTIALS, MAX_CREDENTIALS_BYTES)
            current_host = host.read_bytes()
        except OSError:
            return
        if now != self.copied_credentials and current_host == self.copied_credentials:
            atomic_write(host, now, mode=0o600)
        self.copied_credentials = None


def prepare_config_dir(path: Path, *, uid: int | None, gid: int | None,
                       env: Mapping[str, str], login: str | None = None,
                       copy_login: bool = True) -> ConfigDir:
    """Create the dir (0700, owned by the sandbox uid) and copy in what the user has. With
    `copy_login` off (the egress proxy holds the credentials), the host's login file is not
    copied; `login` is the placeholder login file written instead."""
    path.mkdir(parents=True, exist_ok=True, mode=0o700)
    os.utime(path)
    prepared = ConfigDir(path)
    host = host_claude_dir()
    if host.resolve() != path.resolve():
        dir_fd = os.open(path, hostfs.DIRECTORY)
        try:
            for name in USER_FILES:
                with contextlib.suppress(OSError):
                    _copy_in(host / name, dir_fd, name)
        finally:
            os.close(dir_fd)
        if login is not None:
            atomic_write(path / CREDENTIALS, login.encode(), mode=0o600)
        elif not copy_login:
            with contextlib.suppress(FileNotFoundError):
                (path / CREDENTIALS).unlink()
        elif not any(env.get(name) for name in TOKEN_ENV):
            source = host / CREDENTIALS
            with contextlib.suppress(OSError):
                data = source.read_bytes()
                atomic_write(path / CREDENTIALS, data, mode=0o600)
                prepared.copied_credentials = data
    if uid is not None and os.geteuid() == 0 and uid != 0:
        _chown_tree(path, uid, gid if gid is not None else uid)
    return prepared


def _copy_in(source: Path, dir_fd: int, name: str, depth: int = 0) -> None:
    """Copy a host file or tree to `name` in the directory `dir_fd`, never through a link."""
    if source.is_dir() and depth < MAX_COPY_DEPTH:
        sub = hostfs.subdir(dir_fd, name)
        try:
            for entry in os.scandir(source):
                with contextlib.suppress(OSError):
                    _copy_in(Path(entry.path), sub, entry.name, depth + 1)
        finally:
            os.close(sub)
    elif source.is_file():
        hostfs.replace_in(dir_fd, name, source.read_bytes())


def _chown_tree(path: Path, uid: int, gid: int) -> None:
    for root, dirs, files in os.walk(path):
        for name in [root, *(os.path.join(root, d) for d in dirs),
                     *(os.path.join(root, f) for f in files)]:
            with contextlib.suppress(OSError):
                os.lchown(name, uid, gid)
