"""`channelcoder sessions` (not built yet)."""

from __future__ import annotations

import argparse
from typing import Any


def register(sub: Any) -> None:
    parser: argparse.ArgumentParser = sub.add_parser("sessions", help="(not built yet)")
    parser.set_defaults(handler=lambda args: _missing())


def _missing() -> int:
    from ..errors import UsageError

    raise UsageError("'channelcoder sessions' is not built yet")
