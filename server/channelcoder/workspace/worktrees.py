"""Git worktrees beside the repository: `<parent>/<repo>-<branch-slug>`, created or reused.

A job with `worktree="experiment/risky"` runs in `../myrepo-experiment-risky` on branch
`experiment/risky` (created from `base`, default HEAD, when it does not exist yet). Worktrees are
kept unless asked otherwise, and one with uncommitted changes is never removed without `force`.
"""

from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass
from pathlib import Path

from ..config import WorktreeOptions
from ..errors import GitError, WorkspaceError
from ..state import file_lock, subdir
from .gitcmd import Repo, require_repo, run_git, split_z

_UNSAFE = re.compile(r"[\s/\\:*?\"<>|~^]+")


@dataclass(frozen=True)
class Worktree:
    path: Path
    branch: str | None = None
    head: str | None = None
    main: bool = False
    locked: bool = False
    prunable: bool = False

    def to_json(self) -> dict[str, object]:
        return {"path": str(self.path), "branch": self.branch, "head": self.head,
                "main": self.main, "locked": self.locked, "prunable": self.prunable}


def slug(branch: str) -> str:
    """'experiment/risky' -> 'experiment-risky' (non-ASCII letters are kept)."""
    text = _UNSAFE.sub("-", branch.strip()).strip("-.")
    return text or "worktree"


def check_branch(repo: Repo, branch: str) -> str:
    proc = run_git(["check-ref-format", "--branch", branch], cwd=repo.top, check=False)
    if proc.returncode != 0:
        raise WorkspaceError(f"'{branch}' is not a valid branch name",
                             hint="use a name such as feature/login (no spaces, '..', or '~^:')")
    return proc.stdout.decode("utf-8", "surrogateescape").strip() or branch


def list_worktrees(workspace: Path) -> list[Worktree]:
    """The repository's worktrees, the main one first."""
    repo = require_repo(workspace, "listing worktrees")
    data = run_git(["worktree", "list", "--porcelain", "-z"], cwd=repo.top).stdout
    found: list[Worktree] = []
    current: dict[str, str] = {}
    for field in [*data.split(b"\0"), b""]:
        text = field.decode("utf-8", "surrogateescape")
        if text:
            key, _, value = text.partition(" ")
            current[key] = value
            continue
        if "worktree" in current:
            branch = current.get("branch", "")
            found.append(Worktree(
                path=Path(current["worktree"]),
                branch=branch.removeprefix("refs/heads/") or None,
                head=current.get("HEAD"),
                main=not found,
                locked="locked" in current,
                prunable="prunable" in current,
            ))
        current = {}
    return found


def default_path(workspace: Path, branch: str) -> Path:
    """`<parent of the main checkout>/<its name>-<branch slug>`."""
    main = list_worktrees(workspace)[0].path
    return main.parent / f"{main.name}-{slug(branch)}"


def find_worktree(workspace: Path, branch_or_path: str) -> Worktree | None:
    """A worktree by branch name, by path, or by the default path of a branch name."""
    worktrees = list_worktrees(workspace)
    candidates = {Path(branch_or_path).expanduser()}
    if not Path(branch_or_path).is_absolute():
        candidates.add((workspace / branch_or_path).resolve())
        candidates.add(default_path(workspace, branch_or_path))
    for tree in worktrees:
        if tree.branch == branch_or_path or tree.path in candidates or \
                _same(tree.path, candidates):
            return tree
    return None


def _same(path: Path, candidates: set[Path]) -> bool:
    try:
        resolved = path.resolve()
    except OSError:
        return False
    return any(resolved == c.resolve() for c in candidates if c.exists())


def ensure_worktree(workspace: Path, options: WorktreeOptions) -> tuple[Worktree, bool]:
    """Create the worktree for `options.branch`, or reuse it. Returns it and whether it is new."""
    repo = require_repo(workspace, "worktree")
    branch = check_branch(repo, options.branch)
    key = hashlib.sha256(str(repo.common_dir).encode()).hexdigest()[:16]
    with file_lock(subdir("locks") / f"worktree-{key}.lock"):
        for tree in list_worktrees(workspace):
            if tree.branch != branch:
                continue
            if tree.main:
                raise WorkspaceError(
                    f"the branch '{branch}' is checked out in the main working tree {tree.path}",
                    hint="a worktree needs a branch of its own: choose a new branch name")
            if tree.prunable or not tree.path.is_dir():
                run_git(["worktree", "prune"], cwd=repo.top)
                break
            return tree, False
        path = _target_path(workspace, branch, options.path)
        if path.exists() and any(path.iterdir()):
            raise WorkspaceError(
                f"{path} already exists and is not a worktree of branch '{branch}'",
                hint="remove or rename it, or give the worktree another path (worktree.path)")
        if repo.head is None:
            raise WorkspaceError(f"the repository {repo.top} has no commit yet",
                                 hint="commit once, then a worktree can branch from it")
        exists = run_git(["show-ref", "--verify", "-q", f"refs/heads/{branch}"],
                         cwd=repo.top, check=False).returncode == 0
        args = ["worktree", "add"]
        if exists:
            args += ["--", str(path), branch]
        else:
            args += ["-b", branch, "--", str(path), options.base or "HEAD"]
        try:
            run_git(args, cwd=repo.top)
        except GitError as exc:
            raise WorkspaceError(f"cannot create the worktree for '{branch}': {exc.message}",
                                 hint="check the branch and base names") from exc
    created = next((t for t in list_worktrees(workspace) if t.branch == branch), None)
    if created is None:
        raise WorkspaceError(f"git did not create a worktree for '{branch}' at {path}")
    return created, True


def _target_path(workspace: Path, branch: str, explicit: str | None) -> Path:
    if explicit:
        path = Path(explicit).expanduser()
        return path if path.is_absolute() else (workspace / path).resolve()
    return default_path(workspace, branch)


def dirty_files(path: Path) -> list[str]:
    """Uncommitted changes in a worktree (modified, staged, untracked-not-ignored)."""
    proc = run_git(["status", "--porcelain=v1", "-z", "--untracked-files=all"], cwd=path)
    return [entry[3:] for entry in split_z(proc.stdout) if len(entry) > 3]


def remove_worktree(workspace: Path, branch_or_path: str, *, force: bool = False) -> Worktree:
    """Remove a worktree (its branch stays). Refuses one with uncommitted changes unless forced."""
    tree = find_worktree(workspace, branch_or_path)
    if tree is None:
        raise WorkspaceError(f"there is no worktree for '{branch_or_path}'",
                             hint="list them with: channelcoder worktree ls")
    if tree.main:
        raise WorkspaceError(f"{tree.path} is the main working tree; it cannot be removed")
    if tree.path.is_dir() and not force:
        dirty = dirty_files(tree.path)
        if dirty:
            shown = ", ".join(dirty[:5]) + (" …" if len(dirty) > 5 else "")
            raise WorkspaceError(
                f"the worktree {tree.path} has uncommitted changes ({shown})",
                hint="commit or stash them first, or remove it anyway with --force")
    args = ["worktree", "remove"]
    if force:
        args += ["--force", "--force"]
    run_git([*args, "--", str(tree.path)], cwd=_main_top(workspace))
    return tree


def release_worktree(workspace: Path, tree: Worktree) -> str | None:
    """After a job with keep=False: remove the worktree if clean, else keep it and say why."""
    if not tree.path.is_dir():
        return None
    dirty = dirty_files(tree.path)
    if dirty:
        return (f"kept the worktree {tree.path}: it has uncommitted changes "
                f"({len(dirty)} file(s)); remove it with 'channelcoder worktree rm {tree.branch}'")
    remove_worktree(workspace, str(tree.path))
    return f"removed the worktree {tree.path} (branch {tree.branch} kept)"


def prune_worktrees(workspace: Path) -> list[str]:
    """`git worktree prune`: forget worktrees whose directories are gone. Returns what it said."""
    proc = run_git(["worktree", "prune", "-v"], cwd=_main_top(workspace))
    text = (proc.stdout + proc.stderr).decode("utf-8", "replace")
    return [line.strip() for line in text.splitlines() if line.strip()]


def _main_top(workspace: Path) -> Path:
    return list_worktrees(workspace)[0].path
