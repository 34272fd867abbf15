"""`channelcoder doctor`: is Docker mode ready here? Engine, image, claude in it, credentials.

Credentials are named by source only; nothing secret is printed. Exit code 0 when every check
passes, 1 otherwise.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path
from typing import Any


def register(sub: Any) -> None:
    parser: argparse.ArgumentParser = sub.add_parser(
        "doctor", help="check the Docker engine, the sandbox image, claude and credentials")
    parser.add_argument("-C", "--cwd", metavar="DIR", help="the workspace (default: .)")
    parser.add_argument("--json", action="store_true", help="print the checks as JSON")
    parser.set_defaults(handler=run)


def run(args: argparse.Namespace) -> int:
    import anyio

    from ..errors import UsageError
    from ..sandbox.diagnose import diagnose
    from .cmd_image import workspace_docker_options

    workspace = Path(args.cwd).resolve() if args.cwd else Path.cwd()
    if not workspace.is_dir():
        raise UsageError(f"--cwd {args.cwd}: not a directory")
    checks = anyio.run(diagnose, workspace, workspace_docker_options(workspace))
    if args.json:
        print(json.dumps([c.to_json() for c in checks], indent=2))
    else:
        for check in checks:
            print(f"{'ok ' if check.ok else 'NO '} {check.name:12} {check.detail}")
            if check.hint and not check.ok:
                print(f"    {'':12} hint: {check.hint}")
    return 0 if all(c.ok for c in checks) else 1
