"""The sandbox's one way out: a host-side HTTP proxy with an allowlist that holds the credentials.

    policy = Policy.build(["registries", "example.com:8443"], api_hosts=["api.anthropic.com"])
    async with EgressProxy(policy, Credentials.from_environment(), socket_path=path,
                           on_blocked=report) as proxy:
        ...

From synchronous code: `ProxyThread.start(EgressProxy(...))`, then `.close()`.
"""

from .credentials import Credentials, HostLogin
from .policy import Policy
from .server import EgressProxy, Limits
from .thread import ProxyThread

__all__ = ["Credentials", "EgressProxy", "HostLogin", "Limits", "Policy", "ProxyThread"]
