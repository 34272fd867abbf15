"""The egress proxy for synchronous code: served by an event loop of its own, in a thread.

    running = ProxyThread.start(EgressProxy(policy, credentials, socket_path=path))
    ...                      # the container runs; the proxy serves
    running.close()          # stops serving, removes its socket

`on_blocked`, `on_always` and `ask` are called in that thread (`ask` is awaited on its loop).
"""

from __future__ import annotations

import contextlib
from typing import Any

from anyio.from_thread import BlockingPortal, start_blocking_portal

from .server import EgressProxy


class ProxyThread:
    def __init__(self, proxy: EgressProxy, portal: BlockingPortal,
                 stack: contextlib.ExitStack) -> None:
        self.proxy = proxy
        self.portal = portal
        self._stack = stack

    @classmethod
    def start(cls, proxy: EgressProxy) -> ProxyThread:
        """Listening when it returns (the socket exists, `proxy.port` is set)."""
        stack = contextlib.ExitStack()
        try:
            portal = stack.enter_context(start_blocking_portal())
            stack.enter_context(portal.wrap_async_context_manager(proxy))
        except BaseException:
            stack.close()
            raise
        return cls(proxy, portal, stack)

    def close(self) -> None:
        self._stack.close()

    def __enter__(self) -> ProxyThread:
        return self

    def __exit__(self, *exc: Any) -> None:
        self.close()
