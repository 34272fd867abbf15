"""`channelcoder image build|ls|prune`: the sandbox images of a workspace.

`build` resolves the image a `--docker` run in this workspace would use and builds it when
its content key changed (`--no-cache` forces it), streaming the build log. `ls` lists the
images channelcoder made; `prune` removes those the workspace no longer resolves to.
Docker is imported inside the handlers only.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from ..config import DockerOptions


def register(sub: Any) -> None:
    parser: argparse.ArgumentParser = sub.add_parser(
        "image", help="build, list or prune the sandbox images",
        description="The Docker images channelcoder runs claude in.")
    verbs = parser.add_subparsers(dest="verb", metavar="build|ls|prune")
    build = verbs.add_parser("build", help="build (or refresh) the sandbox image of a workspace")
    build.add_argument("-C", "--cwd", metavar="DIR", help="the workspace (default: .)")
    build.add_argument("--dockerfile", metavar="PATH", help="build this Dockerfile")
    build.add_argument("--build-arg", action="append", metavar="NAME=VALUE", default=[])
    build.add_argument("--no-cache", action="store_true", help="rebuild even when up to date")
    build.add_argument("-q", "--quiet", action="store_true", help="do not print the build log")
    build.add_argument("--pull", choices=["missing", "never", "always"],
                       help="the base image: pull it when missing (default), never, or always")
    build.set_defaults(handler=run_build)
    ls = verbs.add_parser("ls", help="list the images channelcoder built")
    ls.add_argument("-C", "--cwd", metavar="DIR", help="mark the image of this workspace")
    ls.set_defaults(handler=run_ls)
    prune = verbs.add_parser("prune", help="remove images the workspace no longer uses")
    prune.add_argument("-C", "--cwd", metavar="DIR", help="keep the image of this workspace")
    prune.add_argument("--all", action="store_true", help="remove every channelcoder image")
    prune.add_argument("--label", action="append", metavar="NAME=VALUE", default=[],
                       help="only images carrying this label")
    prune.add_argument("-n", "--dry-run", action="store_true", help="only say what would go")
    prune.set_defaults(handler=run_prune)
    parser.set_defaults(handler=lambda args: _usage(parser))


def _usage(parser: argparse.ArgumentParser) -> int:
    from ..errors import UsageError

    raise UsageError("say what to do: channelcoder image build|ls|prune",
                     hint=f"see '{parser.prog} --help'")


def _workspace(args: argparse.Namespace) -> Path:
    from ..errors import UsageError

    path = Path(args.cwd).resolve() if getattr(args, "cwd", None) else Path.cwd()
    if not path.is_dir():
        raise UsageError(f"--cwd {args.cwd}: not a directory")
    return path


def workspace_docker_options(workspace: Path, flags: dict[str, Any] | None = None) -> DockerOptions:
    """The DockerOptions a `--docker` run in this workspace would use (flags > project file)."""
    from ..config import DockerOptions, build_options, load_project_file, merge_layers, untrusted_view
    from ..trust import is_trusted

    project = load_project_file(workspace)
    if not is_trusted(workspace):
        project, _ = untrusted_view(project)
    layer = {"docker": flags or {}}
    options = build_options(merge_layers(layer, {k: v for k, v in project.items()
                                                 if k == "docker"}))
    return options.docker or DockerOptions()


def run_build(args: argparse.Namespace) -> int:
    import anyio

    from ..claude.events import Status
    from ..sandbox.image.resolve import ResolvedImage
    from ..sandbox.manager import SandboxManager
    from .main import parse_data

    workspace = _workspace(args)
    flags: dict[str, Any] = {}
    if args.dockerfile:
        flags["dockerfile"] = args.dockerfile
    if args.build_arg:
        flags["build_args"] = parse_data(args.build_arg, False)
    if args.pull:
        flags["pull"] = args.pull
    options = workspace_docker_options(workspace, flags)

    async def build() -> ResolvedImage:
        found: ResolvedImage | None = None
        async for item in SandboxManager.shared().resolve_image(options, workspace,
                                                                force_build=args.no_cache):
            if isinstance(item, ResolvedImage):
                found = item
            elif isinstance(item, Status):
                if item.log_line is not None:
                    if not args.quiet:
                        print(f"  │ {item.log_line}", file=sys.stderr, flush=True)
                elif item.message:
                    print(f"· {item.message}", file=sys.stderr, flush=True)
        assert found is not None
        return found

    resolved = anyio.run(build)
    state = "built" if resolved.built else "up to date"
    print(f"{resolved.ref}  {state}  ({resolved.source.origin}, claude {resolved.claude_version})")
    return 0


def run_ls(args: argparse.Namespace) -> int:
    from datetime import datetime

    current = _current_tag(_workspace(args))
    from ..sandbox.engine import connect
    from ..sandbox.labels import IMAGE_SOURCE

    images = _managed_images(connect().api, {})
    if not images:
        print("no channelcoder images yet (channelcoder image build)")
        return 0
    print(f"{'TAG':34} {'IMAGE ID':14} {'CREATED':18} {'SIZE':>9}  SOURCE")
    for image in images:
        labels = image.get("Labels") or {}
        for tag in image.get("RepoTags") or ["<none>:<none>"]:
            created = datetime.fromtimestamp(image.get("Created", 0)).strftime("%Y-%m-%d %H:%M")
            size = f"{image.get('Size', 0) / 1e6:.0f} MB"
            mark = " *" if tag == current else ""
            print(f"{tag + mark:34} {image['Id'][7:19]:14} {created:18} {size:>9}  "
                  f"{labels.get(IMAGE_SOURCE, '?')}")
    if current:
        print("* the image this workspace uses")
    return 0


def run_prune(args: argparse.Namespace) -> int:
    from ..sandbox.engine import connect, translate
    from ..sandbox.engine.api import EngineError
    from .main import parse_data

    labels = parse_data(args.label, False)
    keep = None if args.all else _current_tag(_workspace(args))
    api = connect().api
    try:
        in_use = {c.get("ImageID") for c in api.containers(all=True)}
    except Exception as exc:
        raise translate(exc, "listing containers") from exc
    removed = considered = 0
    for image in _managed_images(api, labels):
        tags = image.get("RepoTags") or []
        if keep in tags:
            continue
        name = tags[0] if tags else image["Id"][7:19]
        if image["Id"] in in_use:
            print(f"kept {name}: a container uses it")
            continue
        considered += 1
        if args.dry_run:
            print(f"would remove {name}")
            continue
        try:
            api.remove_image(image["Id"], force=True)
            print(f"removed {name}")
            removed += 1
        except EngineError as exc:
            print(f"kept {name}: {exc.explanation}")
    if args.dry_run and not considered:
        print("nothing to remove" + (f"; {keep} is in use by this workspace" if keep else ""))
    elif not args.dry_run:
        print(f"{removed} image(s) removed" + (f"; kept {keep}" if keep else ""))
    return 0


def _managed_images(api: Any, labels: dict[str, Any]) -> list[dict[str, Any]]:
    from ..sandbox.engine import translate
    from ..sandbox.labels import MANAGED

    wanted = [f"{MANAGED}=1", *(f"{k}={v}" for k, v in labels.items())]
    try:
        images = api.images(filters={"label": wanted})
    except Exception as exc:
        raise translate(exc, "listing images") from exc
    return sorted(images, key=lambda i: -int(i.get("Created", 0)))


def _current_tag(workspace: Path) -> str | None:
    """The tag a --docker run in this workspace would use (no engine needed)."""
    from ..errors import ChannelCoderError
    from ..sandbox.image.cachekey import StatMemo
    from ..sandbox.image.resolve import find_source, plan_build
    from ..trust import is_trusted

    try:
        options = workspace_docker_options(workspace)
        source = find_source(options, workspace, trusted=is_trusted(workspace))
        if source.kind == "image":
            return source.image
        return plan_build(source, options, StatMemo.default()).tag
    except ChannelCoderError:
        return None
