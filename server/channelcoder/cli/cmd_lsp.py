"""`channelcoder lsp`: the language server (stdio; `--tcp HOST:PORT` for debugging)."""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

LEVELS = ("debug", "info", "warning", "error")


def register(sub: Any) -> None:
    parser: argparse.ArgumentParser = sub.add_parser(
        "lsp", help="run the language server (editors start it; stdio by default)")
    parser.add_argument("--stdio", action="store_true",
                        help="serve on stdin/stdout (the default; accepted for clients that pass it)")
    parser.add_argument("--tcp", metavar="HOST:PORT",
                        help="listen on HOST:PORT for one client instead of stdio (debugging; "
                             "port 0 picks a free one, printed on stderr)")
    parser.add_argument("--log-level", choices=LEVELS, type=str.lower,
                        help="log file detail (default: the 'logLevel' setting, else warning)")
    parser.add_argument("--log-file", metavar="PATH",
                        help="where to log (default: <state dir>/logs/lsp.log, rotated)")
    parser.set_defaults(handler=run)


def _address(text: str) -> tuple[str, int]:
    from ..errors import UsageError

    host, _, port = text.rpartition(":")
    if not host or not port.isdigit() or not 0 <= int(port) < 65536:
        raise UsageError(f"--tcp expects HOST:PORT, got {text!r}", hint="e.g. --tcp 127.0.0.1:2087")
    return host, int(port)


def run(args: argparse.Namespace) -> int:
    address = _address(args.tcp) if args.tcp else None
    streams = None
    if address is None:
        from ..lsp.stdio import isolate_stdio

        streams = isolate_stdio()  # before anything else can print into the JSON-RPC stream
    from ..lsp import logs
    from ..lsp.serve import serve_stdio, serve_tcp
    from ..lsp.server import create_server

    logs.setup(args.log_level or "warning", Path(args.log_file) if args.log_file else None)
    server = create_server()
    server.log_level_locked = args.log_level is not None
    if streams is None:
        assert address is not None
        return serve_tcp(server, *address)
    return serve_stdio(server, *streams)
