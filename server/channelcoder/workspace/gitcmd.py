"""Running git: one helper with a clean environment, and what we need to know about a repository.

Every call is blocking (run it in a worker thread from async code). Nothing here writes to a
user's working tree; callers choose `git_dir` / `work_tree` / `index` explicitly.

`run_git` never lets a repository make git run a program: command-line config (the highest
precedence, inherited by git's own child processes) turns off hooks (`core.hooksPath` at a
path that is not a directory), `core.fsmonitor`, pagers, editors, credential helpers, signing
and `ext::` transports; and each filter, textconv and merge driver the repository's own config
(or a file it includes) defines is set to the empty command, which git 2.39 treats as "no
driver" (`filter.<x>.required` is turned off with it). External diff commands are never used:
channelcoder's diffs pass `--no-ext-diff` (an empty `diff.<x>.command` would be an error).
Drivers in the user's global config (git-lfs installed globally) are the user's and stay.
"""

from __future__ import annotations

import os
import subprocess
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

from ..errors import GitError, WorkspaceError

# Inherited variables that would point git somewhere else (e.g. when run from a git hook).
_SCRUBBED = ("GIT_DIR", "GIT_WORK_TREE", "GIT_INDEX_FILE", "GIT_OBJECT_DIRECTORY",
             "GIT_ALTERNATE_OBJECT_DIRECTORIES", "GIT_COMMON_DIR", "GIT_PREFIX",
             "GIT_EXTERNAL_DIFF", "GIT_SSH", "GIT_SSH_COMMAND", "GIT_EDITOR",
             "GIT_SEQUENCE_EDITOR", "GIT_PAGER", "GIT_ASKPASS", "GIT_CONFIG_PARAMETERS",
             "GIT_CONFIG_COUNT")
PROGRAMS_OFF = ("core.fsmonitor=false", f"core.hooksPath={os.devnull}/hooks", "core.pager=cat",
                "core.editor=false", "sequence.editor=false", "credential.helper=",
                "commit.gpgSign=false", "tag.gpgSign=false", "core.sshCommand=ssh",
                "core.alternateRefsCommand=", "protocol.ext.allow=never")
_DRIVERS = r"^(filter|diff|merge)\..+\.(clean|smudge|process|textconv|driver)$"
_DRIVER_TTL = 5.0
_drivers_seen: dict[tuple[str, str], tuple[float, tuple[str, ...]]] = {}
ZERO = "0" * 40  # the object id git writes for "no object" (an added or deleted side)
IDENTITY = {"GIT_AUTHOR_NAME": "channelcoder", "GIT_AUTHOR_EMAIL": "channelcoder@localhost",
            "GIT_COMMITTER_NAME": "channelcoder", "GIT_COMMITTER_EMAIL": "channelcoder@localhost"}


def git_env(extra: Mapping[str, str] | None = None) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k not in _SCRUBBED}
    env.update({"GIT_OPTIONAL_LOCKS": "0", "GIT_TERMINAL_PROMPT": "0", "LC_ALL": "C",
                "GIT_CONFIG_NOSYSTEM": env.get("GIT_CONFIG_NOSYSTEM", "0")})
    env.update(IDENTITY)
    if extra:
        env.update(extra)
    return env


def run_git(args: Sequence[str], *, cwd: Path | None = None, git_dir: Path | None = None,
            work_tree: Path | None = None, index: Path | None = None,
            stdin: bytes | None = None, check: bool = True,
            env: Mapping[str, str] | None = None) -> subprocess.CompletedProcess[bytes]:
    """Run git and return the completed process; a failure raises GitError quoting git.
    No program a repository configures runs (see the module doc)."""
    argv = ["git", "-c", "core.quotepath=false"]
    for setting in (*PROGRAMS_OFF, *_drivers_off(cwd, git_dir)):
        argv += ["-c", setting]
    if git_dir is not None:
        argv.append(f"--git-dir={git_dir}")
    if work_tree is not None:
        argv.append(f"--work-tree={work_tree}")
    argv += list(args)
    extra = dict(env or {})
    if index is not None:
        extra["GIT_INDEX_FILE"] = str(index)
    try:
        proc = subprocess.run(argv, cwd=cwd, input=stdin, capture_output=True,
                              env=git_env(extra), check=False)
    except FileNotFoundError as exc:
        raise GitError("git is not installed", hint="install git (apt-get install git)") from exc
    if check and proc.returncode != 0:
        message = proc.stderr.decode("utf-8", "replace").strip() or f"exit {proc.returncode}"
        raise GitError(f"git {args[0]} failed: {message}")
    return proc


def _drivers_off(cwd: Path | None, git_dir: Path | None) -> tuple[str, ...]:
    """`-c` settings that empty the drivers the repository's own config defines (remembered
    for a few seconds per repository: one `git config` call costs ~1.5 ms)."""
    key = (str(cwd or ""), str(git_dir or ""))
    now = time.monotonic()
    seen = _drivers_seen.get(key)
    if seen is not None and now - seen[0] < _DRIVER_TTL:
        return seen[1]
    argv = ["git", "config", "--show-scope", "-z", "--get-regexp", _DRIVERS]
    if git_dir is not None:
        argv[1:1] = [f"--git-dir={git_dir}"]
    try:
        proc = subprocess.run(argv, cwd=cwd, capture_output=True, env=git_env(), check=False)
    except (FileNotFoundError, NotADirectoryError):
        return ()
    parts = proc.stdout.decode("utf-8", "surrogateescape").split("\0")
    off: list[str] = []
    for scope, entry in zip(parts[::2], parts[1::2], strict=False):
        key_name = entry.partition("\n")[0]
        if scope in ("local", "worktree") and key_name:
            off.append(f"{key_name}=")
            if key_name.startswith("filter."):
                off.append(key_name.rsplit(".", 1)[0] + ".required=false")
    result = tuple(dict.fromkeys(off))
    if len(_drivers_seen) > 256:
        _drivers_seen.clear()
    _drivers_seen[key] = (now, result)
    return result


@dataclass(frozen=True)
class Repo:
    """The repository a path belongs to."""

    top: Path               # the working tree root containing the path
    git_dir: Path           # this working tree's git dir (…/.git or …/.git/worktrees/x)
    common_dir: Path        # shared objects and refs (…/.git)
    head: str | None        # HEAD commit, None before the first commit
    branch: str | None      # checked-out branch, None when detached

    @property
    def objects(self) -> Path:
        return self.common_dir / "objects"


def find_repo(path: Path) -> Repo | None:
    """The git repository containing `path`, or None when it is in none."""
    proc = run_git(["rev-parse", "--path-format=absolute", "--show-toplevel", "--git-dir",
                    "--git-common-dir"], cwd=path, check=False)
    if proc.returncode != 0:
        return None
    lines = proc.stdout.decode("utf-8", "surrogateescape").splitlines()
    if len(lines) < 3 or not lines[0]:
        return None
    top, git_dir, common = (Path(line) for line in lines[:3])
    head_proc = run_git(["rev-parse", "-q", "--verify", "HEAD^{commit}"], cwd=top, check=False)
    head = head_proc.stdout.decode().strip() if head_proc.returncode == 0 else None
    branch_proc = run_git(["symbolic-ref", "-q", "--short", "HEAD"], cwd=top, check=False)
    branch = branch_proc.stdout.decode("utf-8", "surrogateescape").strip() or None
    return Repo(top=top, git_dir=git_dir, common_dir=common, head=head, branch=branch)


def require_repo(path: Path, purpose: str) -> Repo:
    repo = find_repo(path)
    if repo is None:
        raise WorkspaceError(f"{purpose} needs a git repository, and {path} is not in one",
                             hint="run 'git init' and commit once, or run without it")
    return repo


def split_z(data: bytes) -> list[str]:
    """NUL-separated git output as text (undecodable bytes kept via surrogateescape)."""
    return [part.decode("utf-8", "surrogateescape") for part in data.split(b"\0") if part]


def git_text(proc: subprocess.CompletedProcess[bytes]) -> str:
    """A git command's output as text, stripped (an object id, a ref)."""
    return proc.stdout.decode("utf-8", "surrogateescape").strip()
