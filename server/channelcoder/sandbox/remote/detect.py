"""Is the engine on this machine? A remote one cannot bind-mount our files.

An engine reached through a Unix socket is on this machine (Docker Desktop's VM shares the
host's paths with it too). For a TCP or ssh engine the engine's own name (`/info` `Name`, its
host name) is compared with this machine's: the same name is this machine reached over the
network (`tcp://127.0.0.1`, `ssh://localhost`), any other is another machine — or a container
or VM that does not see our files, like the tests' remote engine on 127.0.0.1. The address
alone cannot tell that last case. `docker.remote = true|false` overrides the decision (two
machines of one name, a remote engine that shares the paths over NFS).
"""

from __future__ import annotations

import socket
from dataclasses import dataclass
from typing import Any

from ..engine.api import EngineAPI


@dataclass(frozen=True)
class EngineSite:
    remote: bool
    engine_id: str  # the engine's /info ID ("" unless asked): names its manifests
    name: str
    host: str  # the engine's address, as DOCKER_HOST or the context gave it
    why: str


def locate(api: EngineAPI, host: str, transport: str) -> EngineSite:
    """Where the engine is. One `/info` call for a TCP or ssh engine; none for a socket."""
    if transport == "unix socket":
        return EngineSite(False, "", "", host, "reached through a Unix socket")
    info: dict[str, Any] = api.info()
    name, here = str(info.get("Name") or ""), socket.gethostname()
    engine_id = str(info.get("ID") or name)
    if name == here:
        return EngineSite(False, engine_id, name, host, f"its name is this machine's ({here})")
    return EngineSite(True, engine_id, name, host,
                      f"its name {name!r} is not this machine's ({here!r})")


def overridden(site: EngineSite, remote: bool | None, api: EngineAPI) -> EngineSite:
    """`site` as `docker.remote` (None: the engine's own answer) has it."""
    if remote is None or remote == site.remote:
        return site
    why = "docker.remote = " + ("true" if remote else "false")
    engine_id = site.engine_id or (str(api.info().get("ID") or "") if remote else "")
    return EngineSite(remote, engine_id, site.name, site.host, why)
