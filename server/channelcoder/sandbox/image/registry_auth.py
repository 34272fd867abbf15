"""Registry credentials for a pull, found the way the docker CLI finds them.

The registry of an image reference is its first path component when that looks like a host (a
`.` or `:` in it, or `localhost`), else Docker Hub (`docker.io`). Credentials come from the
docker CLI's `config.json` (`$DOCKER_CONFIG`, else `~/.docker`): a credential helper
(`credHelpers[registry]`, else `credsStore`) asked with `docker-credential-NAME get`, then the
`auths` entries, whose keys may be URLs (`https://index.docker.io/v1/`) or host names. Docker
Hub's key is `https://index.docker.io/v1/`; `index.docker.io` and `docker.io` are the same
registry. `DOCKER_AUTH_CONFIG` (a config.json's content in the environment, as recent docker
CLIs read it) is looked at first. Every secret found is registered for redaction before use.
"""

from __future__ import annotations

import base64
import binascii
import json
import logging
import os
import subprocess
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ...errors import ConfigError
from ...redact import register_secret
from ..engine.address import docker_config_dir

log = logging.getLogger(__name__)

INDEX = "docker.io"
INDEX_SERVER = "https://index.docker.io/v1/"
TOKEN_USERNAME = "<token>"
HELPER_TIMEOUT = 60


@dataclass(frozen=True)
class RegistryAuth:
    """Credentials for one registry; `source` says where they came from (never what they are)."""

    registry: str
    server: str
    source: str
    username: str = ""
    password: str = ""
    identity_token: str = ""

    def config(self) -> dict[str, str]:
        """The Engine API's AuthConfig (the JSON in X-Registry-Auth; its encoding is registered
        as a secret too)."""
        if self.identity_token:
            config = {"identitytoken": self.identity_token, "serveraddress": self.server}
        else:
            config = {"username": self.username, "password": self.password,
                      "serveraddress": self.server}
        register_secret(base64.urlsafe_b64encode(json.dumps(config).encode()).decode("ascii"))
        return config

    def __repr__(self) -> str:
        return f"RegistryAuth({self.registry!r}, from {self.source})"


def hostname(address: str) -> str:
    """`https://host:5000/v1/` -> `host:5000` (the docker CLI's ConvertToHostname)."""
    for prefix in ("http://", "https://"):
        if address.startswith(prefix):
            address = address[len(prefix):]
    return address.split("/", 1)[0]


def normalize_registry(address: str) -> str:
    """A registry address as a host name, Docker Hub's aliases as `docker.io`."""
    host = hostname(address)
    return INDEX if host == f"index.{INDEX}" else host


def registry_of(ref: str) -> str:
    """The registry an image reference is pulled from."""
    first, slash, _ = ref.partition("/")
    if not slash or ("." not in first and ":" not in first and first != "localhost"):
        return INDEX
    return normalize_registry(first)


def config_key(registry: str) -> str:
    """The key the docker CLI stores a registry's credentials under."""
    return INDEX_SERVER if registry == INDEX else registry


def load_docker_config(env: Mapping[str, str] | None = None) -> tuple[Path, dict[str, Any]]:
    """The docker CLI's config.json (empty when there is none, or it cannot be read)."""
    path = docker_config_dir(os.environ if env is None else env) / "config.json"
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        return path, {}
    except (OSError, ValueError) as exc:
        log.warning("ignoring %s: %s", path, exc)
        return path, {}
    return path, data if isinstance(data, dict) else {}


def find_auth(ref: str, env: Mapping[str, str] | None = None) -> RegistryAuth | None:
    """The credentials for pulling `ref`, or None (an anonymous pull). Blocking: a credential
    helper is a process. A helper that fails (not merely "not found") is a ConfigError."""
    env = os.environ if env is None else env
    registry = registry_of(ref)
    key = config_key(registry)
    found = _from_auths(_env_config(env), registry, key, "DOCKER_AUTH_CONFIG")
    if found is not None:
        return found
    path, config = load_docker_config(env)
    helpers = config.get("credHelpers")
    helper = helpers.get(key) if isinstance(helpers, dict) else None
    if not helper and isinstance(helpers, dict):
        helper = helpers.get(registry)
    helper = helper or config.get("credsStore")
    if isinstance(helper, str) and helper:
        found = _from_helper(helper, registry, key, env)
        if found is not None:
            return found
    return _from_auths(config, registry, key, str(path))


def _env_config(env: Mapping[str, str]) -> dict[str, Any]:
    text = env.get("DOCKER_AUTH_CONFIG")
    if not text:
        return {}
    try:
        data = json.loads(text)
    except ValueError:
        log.warning("ignoring DOCKER_AUTH_CONFIG: it is not JSON")
        return {}
    return data if isinstance(data, dict) else {}


def _from_auths(config: Mapping[str, Any], registry: str, key: str,
                where: str) -> RegistryAuth | None:
    """The `auths` entry for the registry: its exact key, else a key naming the same host."""
    auths = config.get("auths")
    if not isinstance(auths, dict):
        return None
    entry = auths.get(key)
    if entry is None:
        entry = next((value for name, value in auths.items()
                      if normalize_registry(str(name)) == registry), None)
    if not isinstance(entry, dict):
        return None
    return _from_entry(entry, registry, key, where)


def _from_entry(entry: Mapping[str, Any], registry: str, server: str,
                where: str) -> RegistryAuth | None:
    source = f"'auths' in {where}"
    token = entry.get("identitytoken")
    if isinstance(token, str) and token:
        register_secret(token)
        return RegistryAuth(registry, server, source, identity_token=token)
    encoded = entry.get("auth")
    if isinstance(encoded, str) and encoded:
        register_secret(encoded)
        try:
            username, sep, password = base64.b64decode(encoded).decode("utf-8").partition(":")
        except (binascii.Error, ValueError) as exc:
            raise ConfigError(f"the credentials for {registry} in {where} cannot be read",
                              hint=f"log in again: docker login {registry}") from exc
        if not sep:
            raise ConfigError(f"the credentials for {registry} in {where} are not user:password",
                              hint=f"log in again: docker login {registry}")
        register_secret(password)
        return RegistryAuth(registry, server, source, username=username, password=password)
    user, secret = entry.get("username"), entry.get("password")
    if isinstance(user, str) and isinstance(secret, str) and user:
        register_secret(secret)
        return RegistryAuth(registry, server, source, username=user, password=secret)
    return None


def _from_helper(name: str, registry: str, server: str,
                 env: Mapping[str, str]) -> RegistryAuth | None:
    """`docker-credential-NAME get` with the server on stdin: {ServerURL, Username, Secret}."""
    program = f"docker-credential-{name}"
    hint = (f"install {program}, or remove '{name}' from credsStore/credHelpers in "
            f"{docker_config_dir(env) / 'config.json'}")
    try:
        done = subprocess.run([program, "get"], input=server.encode(), capture_output=True,
                              timeout=HELPER_TIMEOUT, env=dict(env), check=False)
    except FileNotFoundError as exc:
        raise ConfigError(f"the Docker credential helper {program} is not installed", hint=hint) \
            from exc
    except (OSError, subprocess.TimeoutExpired) as exc:
        raise ConfigError(f"the Docker credential helper {program} failed: {exc}",
                          hint=hint) from exc
    output = done.stdout.decode("utf-8", "replace").strip()
    if done.returncode != 0:
        said = output or done.stderr.decode("utf-8", "replace").strip()
        if "credentials not found" in said.lower():
            return None
        raise ConfigError(f"the Docker credential helper {program} failed for {registry}: "
                          f"{said[:200] or f'exit code {done.returncode}'}", hint=hint)
    try:
        data = json.loads(output)
        username, secret = str(data.get("Username") or ""), str(data.get("Secret") or "")
    except (ValueError, AttributeError) as exc:
        raise ConfigError(f"the Docker credential helper {program} gave no credentials for "
                          f"{registry}", hint=hint) from exc
    if not secret:
        return None
    register_secret(secret)
    source = f"the credential helper {program}"
    if username == TOKEN_USERNAME:
        return RegistryAuth(registry, server, source, identity_token=secret)
    return RegistryAuth(registry, server, source, username=username, password=secret)

