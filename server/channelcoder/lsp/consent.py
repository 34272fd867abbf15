"""Workspace trust, asked once: a `window/showMessageRequest`, remembered.

Asked only when the workspace's own files want something an untrusted workspace may not have
(isolation-weakening keys in `.channelcoder/config.toml`, or a `.channelcoder/Dockerfile`).
"Trust" is recorded with `trust.set_trusted`; "Don't trust" is recorded here so the question is
not repeated; a dismissed question is asked again at the next start.
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import TYPE_CHECKING

import anyio
from lsprotocol import types

from ..config import load_project_file, untrusted_view
from ..errors import ChannelCoderError
from ..state import file_lock, read_json, state_dir, write_json
from ..trust import is_trusted, set_trusted

if TYPE_CHECKING:
    from .server import ChannelCoderServer

log = logging.getLogger(__name__)

TRUST = "Trust workspace"
DISTRUST = "Don't trust"


def _declined_store() -> Path:
    return state_dir() / "trust-declined.json"


def declined(root: Path) -> bool:
    data = read_json(_declined_store(), {})
    return isinstance(data, dict) and str(root) in data


def remember_declined(root: Path) -> None:
    store = _declined_store()
    with file_lock(store.with_suffix(".lock")):
        data = read_json(store, {})
        data = data if isinstance(data, dict) else {}
        data[str(root)] = True
        write_json(store, data)


def wanted(root: Path) -> list[str]:
    """What the workspace's files ask for that needs trust (blocking)."""
    if is_trusted(root) or declined(root):
        return []
    wants: list[str] = []
    try:
        _, dropped = untrusted_view(load_project_file(root))
        wants += dropped
    except ChannelCoderError as exc:
        log.warning("cannot read the project file: %s", exc.message)
    if (root / ".channelcoder" / "Dockerfile").is_file():
        wants.append("its own Dockerfile")
    return wants


async def ask_once(server: ChannelCoderServer, root: Path) -> None:
    wants = await anyio.to_thread.run_sync(wanted, root)
    if not wants:
        return
    message = (f"This workspace's .channelcoder/ files want to change how Claude is sandboxed "
               f"({', '.join(wants)}). Until you trust {root.name}, they are ignored and jobs "
               "run in the default sandbox. Trust it?")
    try:
        answer = await server.window_show_message_request_async(types.ShowMessageRequestParams(
            type=types.MessageType.Warning, message=message,
            actions=[types.MessageActionItem(title=TRUST), types.MessageActionItem(title=DISTRUST)]))
    except Exception as exc:
        log.info("trust question not answered: %s", exc)
        return
    title = answer.title if answer is not None else None
    if title == TRUST:
        await anyio.to_thread.run_sync(set_trusted, root, True)
        server.show(types.MessageType.Info, f"channelcoder: {root} is trusted now")
    elif title == DISTRUST:
        await anyio.to_thread.run_sync(remember_declined, root)
