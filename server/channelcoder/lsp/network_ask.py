"""The editor asks the user about a host the sandbox's egress proxy would refuse.

The proxy runs in a thread of its own; its question is put on the server's event loop as a
`window/showMessageRequest`, and the connection waits for the answer (at most `ASK_TIMEOUT`,
then it is refused). "Always for this workspace" is remembered on the host (`allowances`).
"""

from __future__ import annotations

import asyncio
import logging
from pathlib import Path
from typing import TYPE_CHECKING

import anyio
from lsprotocol import types

from ..allowances import allow_host
from ..request import AskNetwork, NetworkAnswer

if TYPE_CHECKING:
    from .server import ChannelCoderServer

log = logging.getLogger(__name__)

ALLOW_JOB = "Allow for this job"
ALWAYS = "Always for this workspace"
DENY = "Deny"
ASK_TIMEOUT = 60.0


def network_asker(server: ChannelCoderServer, workspace: Path) -> AskNetwork:
    """An `ask` the egress proxy can call from its thread (made on the server's loop)."""
    loop = asyncio.get_running_loop()

    async def ask(host: str, port: int) -> NetworkAnswer:
        future = asyncio.run_coroutine_threadsafe(ask_user(server, workspace, host, port), loop)
        return await asyncio.wrap_future(future)

    return ask


async def ask_user(server: ChannelCoderServer, workspace: Path, host: str,
                   port: int) -> NetworkAnswer:
    message = (f"Claude's sandbox wants to connect to {host}:{port}, which is not on its "
               "network allowlist. Let it?")
    try:
        with anyio.fail_after(ASK_TIMEOUT):
            answer = await server.window_show_message_request_async(
                types.ShowMessageRequestParams(type=types.MessageType.Warning, message=message,
                                               actions=[types.MessageActionItem(title=t)
                                                        for t in (ALLOW_JOB, ALWAYS, DENY)]))
    except TimeoutError:
        log.info("no answer about %s:%s in %.0f s: refused", host, port, ASK_TIMEOUT)
        return "deny"
    except Exception as exc:
        log.info("network question not answered: %s", exc)
        return "deny"
    title = answer.title if answer is not None else None
    if title == ALWAYS:
        await anyio.to_thread.run_sync(allow_host, workspace, f"{host}:{port}")
        return "always"
    return "job" if title == ALLOW_JOB else "deny"
