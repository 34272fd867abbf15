"""`channelcoder worktree ls|create|rm|prune`: git worktrees beside the repository."""

from __future__ import annotations

import argparse
import json
from pathlib import Path
from typing import Any


def register(sub: Any) -> None:
    parser: argparse.ArgumentParser = sub.add_parser(
        "worktree", help="list, create or remove git worktrees for jobs",
        description="Git worktrees beside the repository (<parent>/<repo>-<branch>), as "
                    "'channelcoder run --worktree BRANCH' uses them.")
    parser.add_argument("-C", "--cwd", metavar="DIR", help="the repository (default: .)")
    actions = parser.add_subparsers(dest="action", metavar="{ls,create,rm,prune}")
    ls = actions.add_parser("ls", help="list the repository's worktrees")
    ls.add_argument("--json", action="store_true")
    create = actions.add_parser("create", help="create (or reuse) the worktree of a branch")
    create.add_argument("branch")
    create.add_argument("--base", metavar="REF", help="start a new branch here (default HEAD)")
    create.add_argument("--path", metavar="DIR", help="where (default <parent>/<repo>-<branch>)")
    rm = actions.add_parser("rm", help="remove a worktree (its branch stays)")
    rm.add_argument("target", metavar="BRANCH|PATH")
    rm.add_argument("-f", "--force", action="store_true",
                    help="remove it even with uncommitted changes (they are lost)")
    actions.add_parser("prune", help="forget worktrees whose directories are gone")
    parser.set_defaults(handler=run, action=None)


def run(args: argparse.Namespace) -> int:
    from ..errors import UsageError

    workspace = Path(args.cwd).resolve() if args.cwd else Path.cwd()
    if not workspace.is_dir():
        raise UsageError(f"--cwd {args.cwd}: not a directory")
    if args.action in (None, "ls"):
        return _ls(workspace, getattr(args, "json", False))
    if args.action == "create":
        return _create(workspace, args.branch, args.base, args.path)
    if args.action == "rm":
        return _rm(workspace, args.target, args.force)
    return _prune(workspace)


def _ls(workspace: Path, as_json: bool) -> int:
    from ..workspace.worktrees import list_worktrees

    trees = list_worktrees(workspace)
    if as_json:
        print(json.dumps([t.to_json() for t in trees], indent=2, ensure_ascii=False))
        return 0
    for tree in trees:
        flags = [f for f, on in (("main", tree.main), ("locked", tree.locked),
                                 ("prunable", tree.prunable)) if on]
        branch = tree.branch or f"(detached {str(tree.head or '')[:8]})"
        extra = f"  [{', '.join(flags)}]" if flags else ""
        print(f"{branch}  {tree.path}{extra}")
    return 0


def _create(workspace: Path, branch: str, base: str | None, path: str | None) -> int:
    from ..config import WorktreeOptions
    from ..workspace.worktrees import ensure_worktree

    tree, created = ensure_worktree(workspace, WorktreeOptions(branch=branch, base=base, path=path))
    print(f"{'created' if created else 'reusing'} worktree {tree.path} (branch {tree.branch})")
    return 0


def _rm(workspace: Path, target: str, force: bool) -> int:
    from ..workspace.worktrees import remove_worktree

    tree = remove_worktree(workspace, target, force=force)
    print(f"removed worktree {tree.path}" + (f" (branch {tree.branch} kept)" if tree.branch else ""))
    return 0


def _prune(workspace: Path) -> int:
    from ..workspace.worktrees import prune_worktrees

    lines = prune_worktrees(workspace)
    print("\n".join(lines) if lines else "nothing to prune")
    return 0
