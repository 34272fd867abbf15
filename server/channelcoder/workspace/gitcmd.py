"""Running git: one helper with a clean environment, and what we need to know about a repository.

Every call is blocking (run it in a worker thread from async code). Nothing here writes to a
user's working tree; callers choose `git_dir` / `work_tree` / `index` explicitly.

`run_git` never lets a repository make git run a program. Command-line config (the highest
precedence, and inherited by git's own child processes through GIT_CONFIG_PARAMETERS) sets, for
every call, what git 2.39 was seen to obey:

- hooks: `core.hooksPath` names a path that cannot be a directory — no hook runs, no error;
- `core.fsmonitor=false` beats a command in the repository's config;
- `core.askPass=` and `credential.helper=` (an empty value empties the helper list, URL-scoped
  helpers included); `core.alternateRefsCommand=` (empty: no command, the fetch still works);
  the pager is `cat`, the editors `false`, ssh and gpg programs the plain defaults; signing
  and `log.showSignature` are off (a `git log --format=%s` of a signed commit runs
  gpg.program otherwise);
- transports other than local paths are refused (`protocol.<x>.allow=never`: a per-protocol
  setting beats `protocol.allow`, so each is named), which also keeps `url.<x>.insteadOf` from
  turning a path into `ext::` or a `core.gitProxy` command; `submodule.recurse=false`;
- the drivers that the repository's own config defines (local and worktree scope, the files it
  includes, and the config of each submodule under `modules/` — a `git status` recurses into
  submodules): `filter.<x>.clean/smudge/process` are emptied (empty means "no filter") with
  `filter.<x>.required=false` (required with an empty filter is an error); `diff.<x>.textconv`
  becomes `cat` (an empty textconv is an error: "cannot run"); `merge.<x>.driver` becomes
  `false` (a conflict; empty fails the merge); `diff.<x>.command` is emptied and — since an
  empty external diff is an error too, and `diff.external` cannot be unset — `diff`, `log` and
  `show` always get `--no-ext-diff` (plumbing such as diff-tree never runs one).

Aliases cannot shadow the built-in commands used here. Drivers in the user's global config
(git-lfs installed globally) are the user's own and stay.
"""

from __future__ import annotations

import os
import re
import subprocess
from collections.abc import Iterator, Mapping, Sequence
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
                "core.editor=false", "sequence.editor=false", "core.askPass=",
                "credential.helper=", "core.sshCommand=ssh", "core.alternateRefsCommand=",
                "commit.gpgSign=false", "tag.gpgSign=false", "log.showSignature=false",
                "gpg.program=gpg", "gpg.ssh.program=ssh-keygen", "gpg.x509.program=gpgsm",
                "submodule.recurse=false", "protocol.allow=never", "protocol.file.allow=always",
                *(f"protocol.{name}.allow=never" for name in ("ext", "git", "ssh", "http",
                                                              "https")))
_DRIVER = re.compile(r"(filter|diff|merge)\.(.+)\.(clean|smudge|process|textconv|command|driver)")
_DRIVER_OFF = {"textconv": "cat", "driver": "false"}
_OWN_SCOPES = ("local", "worktree", "command")
_NO_EXT_DIFF = ("diff", "log", "show")
# Commands that never run a filter, textconv or merge driver (they read or write refs, config
# and objects, never a work tree's content): no need to find the repository's drivers first.
_DRIVERLESS = frozenset({"rev-parse", "symbolic-ref", "for-each-ref", "show-ref", "update-ref",
                         "config", "check-ref-format", "write-tree", "rev-list", "init",
                         "fetch", "pack-refs", "ls-files"})
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
    extra = dict(env or {})
    if index is not None:
        extra["GIT_INDEX_FILE"] = str(index)
    full_env = git_env(extra)
    argv = ["git", "-c", "core.quotepath=false"]
    drivers = () if args and args[0] in _DRIVERLESS else _drivers_off(cwd, git_dir, full_env)
    for setting in (*PROGRAMS_OFF, *drivers):
        argv += ["-c", setting]
    if git_dir is not None:
        argv.append(f"--git-dir={git_dir}")
    if work_tree is not None:
        argv.append(f"--work-tree={work_tree}")
    argv += list(args)
    if args and args[0] in _NO_EXT_DIFF:
        argv.insert(len(argv) - len(args) + 1, "--no-ext-diff")
    try:
        proc = subprocess.run(argv, cwd=cwd, input=stdin, capture_output=True, env=full_env,
                              check=False)
    except FileNotFoundError as exc:
        raise GitError("git is not installed", hint="install git (apt-get install git)") from exc
    if check and proc.returncode != 0:
        message = proc.stderr.decode("utf-8", "replace").strip() or f"exit {proc.returncode}"
        raise GitError(f"git {args[0]} failed: {message}")
    return proc


# ---------------------------------------------------------------------------------------------
# The drivers a repository's own config defines


@dataclass(frozen=True)
class _Drivers:
    watched: tuple[Path, ...]   # every file and directory whose change can change `off`
    stamp: tuple[object, ...]
    off: tuple[str, ...]


_drivers_seen: dict[tuple[str, str], _Drivers] = {}


def _drivers_off(cwd: Path | None, git_dir: Path | None,
                 env: Mapping[str, str]) -> tuple[str, ...]:
    """`-c` settings that turn off each driver the repository's own config defines.

    Found with two git calls (~3 ms) and remembered until one of the files they were read
    from (or HEAD, for `includeIf "onbranch:…"`) changes: a hit costs a few `stat`s."""
    key = (str(cwd or ""), str(git_dir or ""))
    seen = _drivers_seen.get(key)
    if seen is not None and _stamp(seen.watched) == seen.stamp:
        return seen.off
    found = _read_drivers(cwd, git_dir, env)
    if found is None:
        return ()
    if len(_drivers_seen) > 256:
        _drivers_seen.clear()
    _drivers_seen[key] = found
    return found.off


def _read_drivers(cwd: Path | None, git_dir: Path | None,
                  env: Mapping[str, str]) -> _Drivers | None:
    where = [f"--git-dir={git_dir}"] if git_dir is not None else []
    try:
        dirs = subprocess.run(["git", *where, "rev-parse", "--path-format=absolute",
                               "--git-dir", "--git-common-dir", "--show-cdup"],
                              cwd=cwd, capture_output=True, env=env, check=False)
    except (FileNotFoundError, NotADirectoryError):
        return None
    lines = dirs.stdout.decode("utf-8", "surrogateescape").splitlines()
    if dirs.returncode != 0 or len(lines) < 2:
        return None
    own, common = Path(lines[0]), Path(lines[1])
    # git reads from the top of the work tree (or stays put): relative origins start there.
    top = Path(cwd or os.getcwd(), lines[2] if len(lines) > 2 else "")
    watched = [common / "config", own / "config.worktree", own / "HEAD", common / "modules"]
    includes: list[str] = []
    for sub_dir in _submodule_git_dirs(common / "modules", watched):
        includes += ["-c", f"include.path={sub_dir / 'config'}"]
    # Snapshot the watched files before reading: a change while git reads is seen next time.
    stamp = _stamp(tuple(watched))
    proc = subprocess.run(["git", *includes, *where, "config", "--show-scope", "--show-origin",
                           "-z", "--get-regexp", "."], cwd=cwd, capture_output=True, env=env,
                          check=False)
    parts = proc.stdout.decode("utf-8", "surrogateescape").split("\0")
    off: list[str] = []
    for scope, origin, entry in zip(parts[0::3], parts[1::3], parts[2::3], strict=False):
        if scope not in _OWN_SCOPES:
            continue
        if origin.startswith("file:"):
            source = top / origin[5:]
            if source not in watched:
                watched.append(source)
                stamp += (_stat(source),)
        name = entry.partition("\n")[0]
        match = _DRIVER.fullmatch(name)
        if match is None:
            continue
        off.append(f"{name}={_DRIVER_OFF.get(match[3], '')}")
        if match[1] == "filter":
            off.append(f"filter.{match[2]}.required=false")
    return _Drivers(tuple(watched), stamp, tuple(dict.fromkeys(off)))


def _submodule_git_dirs(modules: Path, watched: list[Path]) -> Iterator[Path]:
    """The git dirs under a `modules/` directory (a submodule's name may contain slashes; a
    submodule has its own `modules/`). Each directory looked into is watched."""
    try:
        entries = [entry for entry in modules.iterdir()
                   if entry.is_dir() and not entry.is_symlink()]
    except OSError:
        return
    for entry in entries:
        if (entry / "HEAD").exists() and (entry / "config").is_file():
            watched.append(entry / "config")
            yield entry
            watched.append(entry / "modules")
            yield from _submodule_git_dirs(entry / "modules", watched)
        else:
            watched.append(entry)
            yield from _submodule_git_dirs(entry, watched)


def _stat(path: Path) -> object:
    try:
        st = os.stat(path)
    except OSError:
        return None
    return (st.st_mtime_ns, st.st_size, st.st_ino)


def _stamp(paths: tuple[Path, ...]) -> tuple[object, ...]:
    return tuple(_stat(path) for path in paths)


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
