"""The HTTP proxies a sandbox and an image build get, as the docker CLI hands them out.

Two sources: the host's own proxy variables (`HTTP_PROXY`, `https_proxy`, …), and the docker
CLI's `config.json` (`$DOCKER_CONFIG`, else `~/.docker`):

    {"proxies": {"default": {"httpProxy": "…", "httpsProxy": "…", "noProxy": "…"},
                 "tcp://build-host:2376": {…}}}

The entry keyed by the engine's address wins over `default`, as in the docker CLI, and each
value is given under both the upper- and the lower-case name. A variable set on the host wins
over the config file; the user's own `docker.env` wins over both (the caller applies it last).
A proxy URL can carry a password (`http://user:secret@proxy:3128`): the password is registered
for redaction, so it is shown nowhere, while the proxy's address still is.
"""

from __future__ import annotations

import json
import os
from collections.abc import Mapping
from urllib.parse import urlsplit

from ...redact import register_secret
from .address import docker_config_dir

PROXY_VARS = ("HTTP_PROXY", "HTTPS_PROXY", "NO_PROXY", "FTP_PROXY", "ALL_PROXY",
              "http_proxy", "https_proxy", "no_proxy", "ftp_proxy", "all_proxy")
CONFIG_KEYS = {"httpProxy": "HTTP_PROXY", "httpsProxy": "HTTPS_PROXY", "noProxy": "NO_PROXY",
               "ftpProxy": "FTP_PROXY", "allProxy": "ALL_PROXY"}


def config_proxies(engine_host: str | None, env: Mapping[str, str] | None = None
                   ) -> dict[str, str]:
    """The docker config's proxies for the engine at `engine_host` (both spellings)."""
    env = os.environ if env is None else env
    try:
        config = json.loads((docker_config_dir(env) / "config.json").read_text())
        proxies = config.get("proxies") or {}
    except (OSError, ValueError, AttributeError):
        return {}
    if not isinstance(proxies, dict):
        return {}
    chosen = proxies.get(engine_host or "") or proxies.get("default") or {}
    out: dict[str, str] = {}
    if isinstance(chosen, dict):
        for key, name in CONFIG_KEYS.items():
            value = chosen.get(key)
            if isinstance(value, str) and value:
                out[name] = out[name.lower()] = value
    return out


def proxy_env(engine_host: str | None, env: Mapping[str, str] | None = None) -> dict[str, str]:
    """The proxy variables for a sandbox or a build: the docker config's, then the host's."""
    env = os.environ if env is None else env
    out = config_proxies(engine_host, env)
    out.update({name: env[name] for name in PROXY_VARS if env.get(name)})
    for value in out.values():
        register_secret(_password(value))
    return out


def _password(url: str) -> str | None:
    try:
        return urlsplit(url).password
    except ValueError:
        return None
