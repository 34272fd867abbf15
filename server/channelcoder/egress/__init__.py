"""The sandbox's one way out: a host-side HTTP proxy with an allowlist that holds the credentials.

    policy = Policy.build(["registries", "example.com:8443"], api_hosts=["api.anthropic.com"])
    async with EgressProxy(policy, Credentials.from_environment(), socket_path=path,
                           on_blocked=report) as proxy:
        ...

From synchronous code: `ProxyThread.start(EgressProxy(...))`, then `.close()`.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from .credentials import Credentials, HostLogin
    from .policy import Policy
    from .server import EgressProxy, Limits
    from .thread import ProxyThread

__all__ = ["Credentials", "EgressProxy", "HostLogin", "Limits", "Policy", "ProxyThread"]
# Loaded when first used: a CLI run describes its sandbox's link (credentials, policy) before
# it serves the proxy (h11), which it does off its critical path.
_HOMES = {"Credentials": "credentials", "HostLogin": "credentials", "Policy": "policy",
          "EgressProxy": "server", "Limits": "server", "ProxyThread": "thread"}


def __getattr__(name: str) -> Any:
    if name in _HOMES:
        return getattr(importlib.import_module(f".{_HOMES[name]}", __name__), name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
