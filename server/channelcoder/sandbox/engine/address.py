"""Where the Docker engine is, and which API version to speak to it.

The order docker-py 7.2 and the docker CLI use: `DOCKER_HOST` (+ `DOCKER_TLS_VERIFY` /
`DOCKER_CERT_PATH`), else the docker CLI's current context, else the default socket. The API
version is the lower of `MAX_API_VERSION` and the engine's own (`/_ping`), unless
`DOCKER_API_VERSION` pins it.
"""

from __future__ import annotations

import json
import os
import re
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

DEFAULT_HOST = "unix:///var/run/docker.sock"
MAX_API_VERSION = "1.45"  # the newest this client is tested against; docker-py 7.2's default
FALLBACK_API_VERSION = "1.24"  # an engine whose /_ping names none (the docker CLI's fallback)
API_VERSION_ENV = "DOCKER_API_VERSION"


class EngineConfigError(Exception):
    """DOCKER_HOST (or the Docker context) names an engine this client cannot talk to."""


# ---------------------------------------------------------------------------------------------
# Where the engine is


@dataclass(frozen=True)
class EngineAddress:
    url: str  # unix:///path, tcp://host:port, https://host:port
    tls: TLSFiles | None = None


@dataclass(frozen=True)
class TLSFiles:
    ca: Path | None
    cert: Path | None
    key: Path | None
    verify: bool


def pinned_api_version(env: Mapping[str, str] | None = None) -> str | None:
    """DOCKER_API_VERSION, which pins the version instead of negotiating (docker CLI, docker-py)."""
    env = os.environ if env is None else env
    text = (env.get(API_VERSION_ENV) or "").strip()
    if not text:
        return None
    if not re.fullmatch(r"\d+\.\d+", text):
        raise EngineConfigError(f"{API_VERSION_ENV}={text!r} is not an API version like "
                                f"{MAX_API_VERSION}")
    return text


def _version_key(version: str) -> tuple[int, ...]:
    return tuple(int(part) for part in re.findall(r"\d+", version)[:2])


def negotiate(engine_version: str | None) -> str:
    """The version to speak: the lower of the engine's and this client's newest."""
    if not engine_version or not re.fullmatch(r"\d+\.\d+", engine_version.strip()):
        return FALLBACK_API_VERSION
    engine_version = engine_version.strip()
    return min(engine_version, MAX_API_VERSION, key=_version_key)


def docker_config_dir(env: Mapping[str, str]) -> Path:
    return Path(env.get("DOCKER_CONFIG") or Path.home() / ".docker")


def engine_address(env: Mapping[str, str] | None = None) -> EngineAddress:
    """DOCKER_HOST (+ DOCKER_TLS_VERIFY/DOCKER_CERT_PATH), else the Docker CLI's current
    context, else the default socket — the order docker-py 7.2 and the docker CLI use."""
    env = os.environ if env is None else env
    host = env.get("DOCKER_HOST")
    if host:
        return EngineAddress(host, _tls_from_env(env))
    context = _current_context(env)
    if context is None:
        return EngineAddress(DEFAULT_HOST)
    return context


def _tls_from_env(env: Mapping[str, str]) -> TLSFiles | None:
    cert_path = env.get("DOCKER_CERT_PATH") or None
    verify_text = env.get("DOCKER_TLS_VERIFY")
    verify = verify_text is not None and verify_text != ""
    if not cert_path and not verify:
        return None
    base = Path(cert_path) if cert_path else docker_config_dir(env)
    return _tls_files(base, verify)


def _tls_files(directory: Path, verify: bool) -> TLSFiles:
    """Docker's ca.pem / cert.pem / key.pem in `directory`, those that exist."""
    def found(name: str) -> Path | None:
        path = directory / name
        return path if path.is_file() else None

    return TLSFiles(found("ca.pem"), found("cert.pem"), found("key.pem"), verify)


def _current_context(env: Mapping[str, str]) -> EngineAddress | None:
    config_dir = docker_config_dir(env)
    name = env.get("DOCKER_CONTEXT")
    if not name:
        try:
            name = json.loads((config_dir / "config.json").read_text()).get("currentContext")
        except (OSError, ValueError, AttributeError):
            name = None
    if not name or name == "default":
        return None
    import hashlib

    digest = hashlib.sha256(name.encode()).hexdigest()
    try:
        meta = json.loads((config_dir / "contexts" / "meta" / digest / "meta.json").read_text())
        endpoint = meta["Endpoints"]["docker"]
        host = str(endpoint["Host"])
    except (OSError, ValueError, KeyError, TypeError) as exc:
        raise EngineConfigError(f"the Docker context {name!r} cannot be read ({exc})") from exc
    tls_dir = config_dir / "contexts" / "tls" / digest / "docker"
    verify = not endpoint.get("SkipTLSVerify", False)
    return EngineAddress(host, _tls_files(tls_dir, verify) if tls_dir.is_dir() else None)


