"""`channelcoder trust [--revoke] [DIR]`: let a workspace's own files weaken isolation."""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any


def register(sub: Any) -> None:
    parser: argparse.ArgumentParser = sub.add_parser(
        "trust", help="trust a workspace (its .channelcoder/ files may then set mounts, env, …)")
    parser.add_argument("path", nargs="?", default=".", help="the workspace (default: .)")
    parser.add_argument("--revoke", action="store_true", help="stop trusting it")
    parser.add_argument("--list", action="store_true", help="list trusted workspaces")
    parser.set_defaults(handler=run)


def run(args: argparse.Namespace) -> int:
    from ..errors import UsageError
    from ..trust import set_trusted, trusted_workspaces

    if args.list:
        for trusted in sorted(trusted_workspaces()):
            print(trusted)
        return 0
    path = Path(args.path).resolve()
    if not path.is_dir():
        raise UsageError(f"{args.path}: not a directory")
    set_trusted(path, not args.revoke)
    print(f"{'no longer trusted' if args.revoke else 'trusted'}: {path}")
    return 0
