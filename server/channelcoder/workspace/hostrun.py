"""Work-tree files your machine runs later: git hooks, build and task files, CI, test setup.

A job may edit them — they are your code — but such an edit is never silent: the CLI footer, the
API's `Result.runs_on_host` and the editors' reviews list each one with what runs it. In place
(direct mode, a worktree) the candidates are fingerprinted before the job and compared after;
a review snapshot's `Changes` carry both texts already.
"""

from __future__ import annotations

import hashlib
import json
import os
import posixpath
import tomllib
from pathlib import Path
from typing import Any

from ..claude.events import Changes, HostRunChange
from .gitcmd import run_git, split_z

_LIMIT = 1 << 20
_SKIPPED_DIRS = {".git", "node_modules", ".venv", "venv", "__pycache__", ".tox", "target"}
_WALK_LIMIT = 20_000
# Names that may run on the host at any depth (`reason_for` decides).
_NAMES = frozenset({"Makefile", "makefile", "GNUmakefile", "package.json", "pyproject.toml",
                    "setup.py", "conftest.py", ".envrc"})
_TAILS = (*(name.encode() + b"\0" for name in sorted(_NAMES)), b".mk\0")
# Looked at directly too: these are often git-ignored, and what runs them does not care.
_TOP_FILES = ("Makefile", "makefile", "GNUmakefile", "package.json", "pyproject.toml",
              "setup.py", "conftest.py", ".envrc", ".pre-commit-config.yaml",
              ".vscode/tasks.json", ".vscode/settings.json", ".vscode/launch.json")
_TOP_DIRS = (".githooks", ".husky", ".devcontainer", ".github/workflows")
_VSCODE = {"tasks.json": "VS Code task", "settings.json": "VS Code settings",
           "launch.json": "VS Code launch config"}
# pyproject.toml tables whose change alters what a build or a task runner executes.
_BUILD_TABLES: tuple[tuple[str, ...], ...] = (
    ("build-system",),
    ("tool", "hatch", "build"), ("tool", "hatch", "metadata", "hooks"),
    ("tool", "hatch", "version"), ("tool", "hatch", "envs"),
    ("tool", "setuptools", "cmdclass"), ("tool", "scikit-build"), ("tool", "maturin"),
    ("tool", "meson-python"), ("tool", "cibuildwheel"), ("tool", "poetry", "build"),
    ("tool", "pdm", "build"), ("tool", "pdm", "scripts"), ("tool", "poe"), ("tool", "tox"),
)


def reason_for(path: str, hooks_dir: str | None = None) -> str | None:
    """Why the host would run `path` (workspace-relative, '/'-separated), or None."""
    parts = path.split("/")
    name = parts[-1]
    if hooks_dir and (path + "/").startswith(hooks_dir.rstrip("/") + "/"):
        return "git hook in core.hooksPath"
    if parts[0] == ".githooks" and len(parts) > 1:
        return "git hook"
    if parts[0] == ".husky" and len(parts) > 1:
        return "husky git hook"
    if path == ".pre-commit-config.yaml":
        return "pre-commit hook"
    if name == ".envrc":
        return "runs when direnv enters the directory"
    if len(parts) == 2 and parts[0] == ".vscode" and name in _VSCODE:
        return _VSCODE[name]
    if parts[0] == ".devcontainer" and len(parts) > 1:
        return "dev container"
    if parts[:2] == [".github", "workflows"] and len(parts) > 2:
        return "CI workflow"
    if name in ("Makefile", "makefile", "GNUmakefile") or name.endswith(".mk"):
        return "runs on `make`"
    if name == "package.json":
        return "npm script"
    if name == "pyproject.toml":
        return "Python build hook"
    if name == "setup.py":
        return "runs on `pip install`"
    if name == "conftest.py":
        return "runs on `pytest`"
    return None


def changed_for_the_host(path: str, before: bytes | None, after: bytes | None,
                         reason: str) -> bool:
    """Does this change matter to what runs? package.json only when its scripts changed,
    pyproject.toml only when its build system or build hooks did; a file that no longer
    parses counts as changed."""
    if before == after:
        return False
    if reason == "npm script":
        return bool(_scripts(before) != _scripts(after))
    if reason == "Python build hook":
        return bool(_build_hooks(before) != _build_hooks(after))
    return True


def from_changes(changes: Changes, hooks_dir: str | None = None) -> tuple[HostRunChange, ...]:
    """The host-run files among a review's changes."""
    found = []
    for change in changes.files:
        reason = reason_for(change.path, hooks_dir)
        if reason is None:
            continue
        before = None if change.old_text is None else change.old_text.encode()
        after = None if change.new_text is None else change.new_text.encode()
        if change.binary or changed_for_the_host(change.path, before, after, reason):
            found.append(HostRunChange(change.path, reason))
    return tuple(found)


class Watch:
    """The host-run files of a work tree before a job, compared after it."""

    def __init__(self, root: Path) -> None:
        self.root = root
        self.hooks_dir = hooks_dir_of(root)
        self.before = {rel: _read(root / rel) for rel in self._candidates()}

    def changes(self) -> tuple[HostRunChange, ...]:
        after = {rel: _read(self.root / rel) for rel in self._candidates()}
        found = []
        for rel in sorted({*self.before, *after}):
            reason = reason_for(rel, self.hooks_dir)
            if reason is not None and changed_for_the_host(rel, self.before.get(rel),
                                                           after.get(rel), reason):
                found.append(HostRunChange(rel, reason))
        return tuple(found)

    def _candidates(self) -> set[str]:
        found = {*_named(self.root), *_probed(self.root, self.hooks_dir)}
        return {rel for rel in found if reason_for(rel, self.hooks_dir)}


def _probed(root: Path, hooks_dir: str | None) -> list[str]:
    """The top-level candidates, looked at whether git ignores them or not."""
    found = [rel for rel in _TOP_FILES if os.path.lexists(root / rel)]
    for top in (*_TOP_DIRS, *([hooks_dir] if hooks_dir not in (None, ".") else [])):
        for current, dirs, files in os.walk(root / top):
            dirs[:] = [d for d in dirs if d not in _SKIPPED_DIRS]
            rel = os.path.relpath(current, root).replace(os.sep, "/")
            found += [f"{rel}/{f}" for f in files]
            if len(found) > 1000:
                return found
    return found


def hooks_dir_of(root: Path) -> str | None:
    """`core.hooksPath` when it names a directory inside the work tree (relative to it)."""
    proc = run_git(["config", "--show-scope", "-z", "--get-all", "core.hooksPath"], cwd=root,
                   check=False)
    parts = split_z(proc.stdout)
    # run_git's own `-c core.hooksPath` (scope "command") is not the repository's
    values = [v for scope, v in zip(parts[::2], parts[1::2], strict=False) if scope != "command"]
    value = values[-1].strip() if values else ""
    if not value:
        return None
    target = os.path.normpath(root / os.path.expanduser(value))
    rel = os.path.relpath(target, root)
    return None if rel.startswith("..") else rel.replace(os.sep, "/")


def _named(root: Path) -> list[str]:
    """Work-tree files (tracked and untracked, not ignored) with a name that may run on the
    host, anywhere. Git lists the tree; the names are picked from its raw output, which keeps
    this to a few ms on a 5,000-file repository. A directory that is no repository is walked
    (without the usual heavy directories)."""
    proc = run_git(["ls-files", "-z", "--cached", "--others", "--exclude-standard"], cwd=root,
                   check=False)
    if proc.returncode == 0:
        return _picked(proc.stdout)
    found: list[str] = []
    seen = 0
    for current, dirs, files in os.walk(root):
        dirs[:] = [d for d in dirs if d not in _SKIPPED_DIRS]
        rel = os.path.relpath(current, root).replace(os.sep, "/")
        found += [posixpath.normpath(posixpath.join(rel, f)) for f in files
                  if f in _NAMES or f.endswith(".mk")]
        seen += len(files)
        if seen > _WALK_LIMIT:
            break
    return found


def _picked(listing: bytes) -> list[str]:
    """The entries of NUL-terminated `listing` whose name is one of `_TAILS` (found with
    `bytes.find`: splitting thousands of entries in Python costs more than git's walk)."""
    found: list[str] = []
    for tail in _TAILS:
        at = listing.find(tail)
        while at >= 0:
            start = listing.rfind(b"\0", 0, at) + 1
            if tail == b".mk\0" or at == start or listing[at - 1:at] == b"/":
                found.append(listing[start:at + len(tail) - 1].decode("utf-8", "surrogateescape"))
            at = listing.find(tail, at + 1)
    return found


def _read(path: Path) -> bytes | None:
    try:
        if path.is_symlink():
            return b"link:" + os.readlink(path).encode()
        with path.open("rb") as handle:
            data = handle.read(_LIMIT + 1)
        return data if len(data) <= _LIMIT else hashlib.sha256(data).digest()
    except OSError:
        return None


def _scripts(data: bytes | None) -> Any:
    if data is None:
        return None
    try:
        parsed = json.loads(data)
    except (ValueError, UnicodeDecodeError):
        return ("unparsable", data)
    return parsed.get("scripts") if isinstance(parsed, dict) else ("not an object", data)


def _build_hooks(data: bytes | None) -> Any:
    if data is None:
        return None
    try:
        parsed = tomllib.loads(data.decode("utf-8"))
    except (tomllib.TOMLDecodeError, UnicodeDecodeError):
        return ("unparsable", data)
    return [_table(parsed, keys) for keys in _BUILD_TABLES]


def _table(parsed: Any, keys: tuple[str, ...]) -> Any:
    for key in keys:
        if not isinstance(parsed, dict):
            return None
        parsed = parsed.get(key)
    return parsed
