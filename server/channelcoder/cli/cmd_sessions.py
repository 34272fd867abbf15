"""`channelcoder sessions ls|show NAME|rm NAME`: the named sessions `run --session NAME` continues."""

from __future__ import annotations

import argparse
import json
from typing import Any


def register(sub: Any) -> None:
    parser: argparse.ArgumentParser = sub.add_parser(
        "sessions", help="list, show or remove named sessions",
        description="Named sessions: each 'channelcoder run --session NAME' turn resumes the last.")
    actions = parser.add_subparsers(dest="action", metavar="{ls,show,rm}")
    ls = actions.add_parser("ls", help="list sessions, most recent first")
    ls.add_argument("--all", action="store_true", help="also unsaved sessions of the Python API")
    ls.add_argument("--json", action="store_true")
    show = actions.add_parser("show", help="a session's turns and options")
    show.add_argument("name")
    show.add_argument("--json", action="store_true", help="the stored session file")
    rm = actions.add_parser("rm", help="forget a session")
    rm.add_argument("names", nargs="+", metavar="NAME")
    parser.set_defaults(handler=run, action=None)


def run(args: argparse.Namespace) -> int:
    if args.action in (None, "ls"):
        return _ls(getattr(args, "all", False), getattr(args, "json", False))
    if args.action == "show":
        return _show(args.name, args.json)
    return _rm(args.names)


def _ls(include_unsaved: bool, as_json: bool) -> int:
    from ..sessions import describe, list_sessions

    found = [describe(s) for s in list_sessions(include_unsaved=include_unsaved)]
    if as_json:
        print(json.dumps(found, indent=2))
        return 0
    if not found:
        print("no sessions yet (start one with: channelcoder run --session NAME \"…\")")
        return 0
    width = max(len(s["name"]) for s in found)
    for item in found:
        where = "docker" if item["docker"] else "native"
        last = str(item["lastActive"] or "")[:19].replace("T", " ")
        print(f"{item['name']:<{width}}  {item['turns']:>3} turn(s)  {last}  {where}  "
              f"{item['workspace'] or ''}")
    return 0


def _show(name: str, as_json: bool) -> int:
    from ..errors import SessionError
    from ..sessions import load

    state = load(name)
    if state is None:
        raise SessionError(f"there is no session named '{name}'",
                           hint="list them with: channelcoder sessions ls")
    if as_json:
        print(json.dumps(state.to_json(), indent=2, ensure_ascii=False))
        return 0
    meta = state.metadata
    print(f"session {state.name}")
    print(f"  workspace   {meta.get('workspace', '')}")
    if meta.get("cwd") and meta.get("cwd") != meta.get("workspace"):
        print(f"  runs in     {meta['cwd']}")
    print(f"  claude id   {state.current_session_id or '(none yet)'}")
    print(f"  turns       {meta.get('turns', 0)}   cost ${float(meta.get('costUsd', 0)):.4f}")
    if state.options:
        print(f"  options     {json.dumps(state.options, ensure_ascii=False)}")
    for message in state.messages:
        role = message.get("role", "?")
        text = str(message.get("content", "")).strip().replace("\n", " ")
        mark = "" if message.get("ok", True) else " (failed)"
        print(f"  {role:>9}{mark}: {text[:200]}{'…' if len(text) > 200 else ''}")
    return 0


def _rm(names: list[str]) -> int:
    from ..errors import SessionError
    from ..session_cleanup import remove_session

    missing = []
    for name in names:
        if remove_session(name):
            print(f"removed session {name}")
        else:
            missing.append(name)
    if missing:
        raise SessionError(f"no session named {', '.join(repr(n) for n in missing)}",
                           hint="list them with: channelcoder sessions ls")
    return 0
