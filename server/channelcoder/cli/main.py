"""`channelcoder` on the command line: flags -> Request -> Job -> terminal rendering.

Argument parsing only; the work happens in jobs/sandbox/workspace. Exit codes: 0 success,
1 failed run, 2 bad usage (one line with a hint, never a traceback), 130 interrupted.
"""

from __future__ import annotations

import argparse
import atexit
import contextlib
import json
import os
import sys
from collections.abc import Callable, Sequence
from importlib import import_module
from pathlib import Path
from typing import Any, NoReturn

from ..errors import ChannelCoderError, UsageError

PROG = "channelcoder"
# Subcommands beside `run`, one module each, cmd_<name>.py; each has register(subparsers).
# Modules import their heavy dependencies inside their handlers, so `run` stays fast.
COMMAND_MODULES = ("image", "doctor", "sessions", "worktree", "trust", "volumes", "lsp")


class _Parser(argparse.ArgumentParser):
    """argparse, but bad usage is one line with a hint and exit code 2."""

    def error(self, message: str) -> NoReturn:
        raise UsageError(message, hint=f"see '{self.prog} --help'")


def _positive_int(flag: str) -> Callable[[str], int]:
    def parse(text: str) -> int:
        try:
            value = int(text)
        except ValueError:
            value = 0
        if value <= 0:
            raise argparse.ArgumentTypeError(
                f"{flag} expects a positive whole number, got {text!r}")
        return value

    return parse


def _positive_float(flag: str, *, zero: bool = False) -> Callable[[str], float]:
    wanted = "a number ≥ 0" if zero else "a positive number"

    def parse(text: str) -> float:
        try:
            value = float(text)
        except ValueError:
            value = -1.0
        if not (value >= 0 if zero else value > 0) or value == float("inf"):
            raise argparse.ArgumentTypeError(f"{flag} expects {wanted}, got {text!r}")
        return value

    return parse


def _add_run_flags(p: argparse.ArgumentParser) -> None:
    p.add_argument("prompt_arg", nargs="?", metavar="PROMPT",
                   help="the prompt, or a prompt file (an existing .md path); '-' reads stdin")
    p.add_argument("-p", "--prompt", dest="inline_prompt", metavar="TEXT",
                   help="an inline prompt (never read as a file)")
    p.add_argument("-C", "--cwd", metavar="DIR", help="the workspace (default: current dir)")
    p.add_argument("--model")
    p.add_argument("--max-turns", type=_positive_int("--max-turns"))
    p.add_argument("-t", "--tools", action="append", metavar="RULES",
                   help="allowed tools, e.g. 'Read,Edit' or 'Bash(git log:*)'; repeatable. "
                        "Other tools are unavailable")
    p.add_argument("--disallowed-tools", action="append", metavar="RULES")
    p.add_argument("-s", "--system", metavar="TEXT|FILE", help="system prompt (or a .md/.txt)")
    p.add_argument("--append-system", metavar="TEXT|FILE")
    p.add_argument("-r", "--resume", metavar="SESSION_ID")
    p.add_argument("--continue", dest="continue_", action="store_true", default=None)
    p.add_argument("--mcp-config", metavar="FILE|JSON")
    p.add_argument("--permission-mode",
                   choices=["default", "acceptEdits", "plan", "bypassPermissions", "dontAsk"])
    p.add_argument("--timeout", type=_positive_float("--timeout"), metavar="SECONDS")
    p.add_argument("--idle-timeout", type=_positive_float("--idle-timeout"), metavar="SECONDS")
    p.add_argument("--session", metavar="NAME", help="a named session: each run continues it")
    p.add_argument("--apply", choices=["direct", "propose"],
                   help="direct: edit files in place; propose: work on a snapshot and show the diff")
    p.add_argument("-d", "--data", action="append", metavar="KEY=VALUE",
                   help="a prompt-file variable; repeatable")
    p.add_argument("--data-stdin", action="store_true", help="read prompt-file variables as JSON")
    wt = p.add_argument_group("worktree")
    wt.add_argument("--worktree", metavar="BRANCH", help="run in a git worktree of BRANCH")
    wt.add_argument("--worktree-base", metavar="REF")
    wt.add_argument("--rm-worktree", action="store_true", default=None)
    dk = p.add_argument_group("docker")
    dk.add_argument("--docker", action="store_true", default=None,
                    help="run inside the Docker sandbox (auto-detects a Dockerfile)")
    dk.add_argument("--docker-image", metavar="IMAGE")
    dk.add_argument("--dockerfile", metavar="PATH")
    dk.add_argument("--docker-mount", action="append", metavar="HOST:CONTAINER[:ro|rw]")
    dk.add_argument("--docker-env", action="append", metavar="NAME=VALUE")
    dk.add_argument("--network", choices=["proxy", "open", "none", "host", "bridge"],
                    help="proxy (default): only through channelcoder's egress proxy (allowlist); open: "
                         "Docker's bridge; none: no network; host: the host's network")
    dk.add_argument("--allow-host", action="append", metavar="PATTERN",
                    help="let the egress proxy reach this host (api.example.com, *.pypi.org, "
                         "host:port, or the preset 'registries'); repeatable")
    dk.add_argument("--memory", metavar="SIZE")
    dk.add_argument("--cpus", type=_positive_float("--cpus"))
    dk.add_argument("--no-cache", action="store_true", default=None, help="force an image rebuild")
    dk.add_argument("--pull", choices=["missing", "never", "always"],
                    help="pull an image from its registry when it is missing (default), never, "
                         "or always (once per run)")
    dk.add_argument("--keep-warm", type=_positive_float("--keep-warm", zero=True),
                    metavar="SECONDS", help="keep a session's sandbox warm this long (0: off)")
    p.add_argument("-v", "--verbose", action="store_true", default=None,
                   help="print the command lines it runs (secrets redacted)")
    p.add_argument("--json", action="store_true", help="print one JSON event per line")


def build_parser(*, run_only: bool = False) -> argparse.ArgumentParser:
    """The whole command line; `run_only` leaves out the other subcommands (and their imports)
    for `channelcoder run ...`, the one whose start-up time users feel."""
    parser = _Parser(prog=PROG, description="Claude Code in a Docker sandbox, from the editor "
                                            "or the terminal.")
    parser.add_argument("--version", action="store_true", help="print the version")
    sub = parser.add_subparsers(dest="command", parser_class=_Parser)
    run = sub.add_parser("run", help="run a prompt", description="Run a prompt with Claude Code.")
    _add_run_flags(run)
    run.set_defaults(handler=cmd_run)
    for module in () if run_only else COMMAND_MODULES:
        import_module(f".cmd_{module}", __package__).register(sub)
    return parser


# ---------------------------------------------------------------------------------------------


def run_layer(args: argparse.Namespace) -> dict[str, Any]:
    """The explicitly given run flags as an options layer (snake_case)."""
    layer: dict[str, Any] = {}
    for key in ("model", "max_turns", "system", "append_system", "resume", "continue_",
                "mcp_config", "permission_mode", "timeout", "idle_timeout", "session", "apply",
                "verbose"):
        value = getattr(args, key, None)
        if value is not None:
            layer[key] = value
    if args.tools:
        layer["tools"] = ",".join(args.tools)
    if args.disallowed_tools:
        layer["disallowed_tools"] = ",".join(args.disallowed_tools)
    docker: dict[str, Any] = {}
    if args.docker_image:
        docker.update(image=args.docker_image, auto=False)
    if args.dockerfile:
        docker["dockerfile"] = args.dockerfile
    if args.docker_mount:
        docker["mounts"] = list(args.docker_mount)
    if args.docker_env:
        docker["env"] = list(args.docker_env)
    if args.allow_host:
        docker["network_allow"] = list(args.allow_host)
    for key in ("network", "memory", "cpus", "no_cache", "keep_warm", "pull"):
        if getattr(args, key) is not None:
            docker[key] = getattr(args, key)
    if docker or args.docker:
        layer["docker"] = docker
    if args.worktree:
        worktree: dict[str, Any] = {"branch": args.worktree}
        if args.worktree_base:
            worktree["base"] = args.worktree_base
        if args.rm_worktree:
            worktree["keep"] = False
        layer["worktree"] = worktree
    elif args.worktree_base or args.rm_worktree:
        raise UsageError("--worktree-base and --rm-worktree need --worktree BRANCH")
    return layer


def parse_data(pairs: Sequence[str] | None, from_stdin: bool) -> dict[str, Any]:
    data: dict[str, Any] = {}
    if from_stdin:
        try:
            loaded = json.loads(sys.stdin.read() or "{}")
        except json.JSONDecodeError as exc:
            raise UsageError(f"--data-stdin: stdin is not JSON ({exc.msg})",
                             hint='pipe an object such as {"name": "value"}') from exc
        if not isinstance(loaded, dict):
            raise UsageError("--data-stdin: stdin must hold a JSON object")
        data.update(loaded)
    for pair in pairs or ():
        key, sep, value = pair.partition("=")
        if not sep or not key:
            raise UsageError(f"--data expects KEY=VALUE, got {pair!r}")
        data[key] = value
    return data


def cmd_run(args: argparse.Namespace) -> int:
    import anyio

    from ..api import build_request
    from ..render import JsonRenderer, TerminalRenderer

    if args.inline_prompt is not None and args.prompt_arg is not None:
        raise UsageError("give the prompt once: either PROMPT or -p TEXT",
                         hint="use -p for inline text and PROMPT for a prompt file")
    prompt = args.inline_prompt
    prompt_file: Path | None = None
    if prompt is None:
        if args.prompt_arg == "-":
            if args.data_stdin:
                raise UsageError("the prompt and --data-stdin cannot both come from stdin",
                                 hint="pass the prompt as an argument or a prompt file")
            prompt = sys.stdin.read()
        elif args.prompt_arg and args.prompt_arg.endswith(".md") and Path(args.prompt_arg).is_file():
            prompt_file = Path(args.prompt_arg)
        else:
            prompt = args.prompt_arg
    if prompt_file is None and not (prompt or "").strip():
        raise UsageError("the prompt is empty", hint="channelcoder run \"what to do\"")
    workspace = Path(args.cwd).resolve() if args.cwd else Path.cwd()
    if not workspace.is_dir():
        raise UsageError(f"--cwd {args.cwd}: not a directory")
    request = build_request(
        prompt if prompt_file is None else prompt_file,
        flags=run_layer(args),
        data=parse_data(args.data, args.data_stdin),
        workspace=workspace,
    )
    renderer = JsonRenderer() if args.json else TerminalRenderer(verbose=bool(args.verbose))
    from ..backend_choice import launch_early
    from ..jobs import Job

    head_start = launch_early(request)
    job = Job(request) if head_start is None else Job(head_start.request, backend=head_start)
    try:
        return int(anyio.run(_run, job, renderer.render))
    finally:
        if head_start is not None:
            head_start.release()


async def _run(job: Any, render: Callable[[Any], None]) -> int:
    from ..claude.events import Error, Result
    from ..jobs import error_from_event

    code = 1
    async for event in job.events():
        render(event)
        if isinstance(event, Result):
            code = 0 if event.ok else 1
        elif isinstance(event, Error):
            code = error_from_event(event).exit_code
    return code


def main(argv: Sequence[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else list(argv)
    parser = build_parser(run_only=bool(argv) and argv[0] == "run")
    try:
        args = parser.parse_args(argv)
        if args.version:
            from importlib.metadata import version

            print(f"{PROG} {version('channelcoder')}")
            return 0
        if not getattr(args, "handler", None):
            parser.print_help(sys.stderr)
            return 2
        return int(args.handler(args))
    except ChannelCoderError as exc:
        print(f"error: {exc.message}", file=sys.stderr)
        if exc.hint:
            print(f"  hint: {exc.hint}", file=sys.stderr)
        return exc.exit_code
    except KeyboardInterrupt:
        print("cancelled", file=sys.stderr)
        return 130


def entry() -> NoReturn:
    """The `channelcoder` command: `main()`, its exit handlers, then an immediate exit.

    By the time `main()` returns every job has ended and its sandbox is gone; the interpreter's
    own teardown (freeing every module and thread state) would only add ~30 ms to each run.
    """
    code = main()
    for stream in (sys.stdout, sys.stderr):
        with contextlib.suppress(Exception):
            stream.flush()
    atexit._run_exitfuncs()
    os._exit(code)


if __name__ == "__main__":
    entry()
