"""`channelcoder volumes ls|rm`: what jobs on a remote engine keep there.

On a remote engine a workspace's files live in volumes (`sandbox.remote`): four pooled ones
per workspace, a named session's own, and read-only caches (the user's object store, the
support files). A removed session takes its own with it; the rest stay until removed here.
`rm -C DIR` removes a workspace's, `rm --all` every one; a volume a running job uses is left.
The engine is the one DOCKER_HOST (or the Docker context) names, as for a job.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path
from typing import Any


def register(sub: Any) -> None:
    parser: argparse.ArgumentParser = sub.add_parser(
        "volumes", help="list or remove what jobs keep on a remote engine",
        description="The volumes channelcoder keeps on a remote engine (workspace copies, "
                    "sessions' config dirs, caches).")
    verbs = parser.add_subparsers(dest="verb", metavar="ls|rm")
    ls = verbs.add_parser("ls", help="list them")
    ls.add_argument("--json", action="store_true")
    rm = verbs.add_parser("rm", help="remove a workspace's, or all")
    rm.add_argument("-C", "--cwd", metavar="DIR", help="the workspace whose volumes go")
    rm.add_argument("--all", action="store_true", help="every channelcoder volume there")
    rm.add_argument("-n", "--dry-run", action="store_true", help="only say what would go")
    parser.set_defaults(handler=run, verb=None)


def run(args: argparse.Namespace) -> int:
    from ..sandbox import engine as eng
    from ..sandbox.remote.volumes import kept_volumes

    if args.verb == "rm" and not args.all and not args.cwd:
        from ..errors import UsageError

        raise UsageError("say which volumes: channelcoder volumes rm -C DIR, or --all",
                         hint="list them first: channelcoder volumes ls")
    api = eng.connect().api
    if args.verb == "rm":
        workspace = None if args.all else _workspace(args.cwd)
        return _rm(api, kept_volumes(api, workspace), args.dry_run)
    found = kept_volumes(api, None)
    if getattr(args, "json", False):
        print(json.dumps(found, indent=2))
        return 0
    if not found:
        print("no channelcoder volumes on this engine (a local engine mounts instead)")
        return 0
    for volume in found:
        owner = f"session {volume['session']}" if volume["session"] else volume["kind"]
        print(f"{volume['name']}  {owner:<20}  {volume['workspace'] or ''}")
    return 0


def _workspace(cwd: str) -> Path:
    from ..errors import UsageError

    path = Path(cwd).resolve()
    if not path.is_dir():
        raise UsageError(f"--cwd {cwd}: not a directory")
    return path


def _rm(api: Any, found: list[dict[str, Any]], dry_run: bool) -> int:
    from ..sandbox.engine.api import EngineError

    if not found:
        print("nothing to remove")
        return 0
    left = 0
    for volume in found:
        if dry_run:
            print(f"would remove {volume['name']}")
            continue
        try:
            api.remove_volume(volume["name"])
        except EngineError as exc:
            left += 1
            print(f"left {volume['name']}: {exc}")
        else:
            print(f"removed {volume['name']}")
    return 1 if left else 0
