"""Bind mounts and environment for the sandbox: parsing and policy.

`host:container[:ro|rw]`: relative host paths resolve against the workspace, `~` expands. A
mount must name an existing host path and an absolute container path; the Docker socket, `/`
and the home directory itself are refused unless `force` (they hand the sandbox the host).
Env names are validated; values are never put in a message.
"""

from __future__ import annotations

import os
import posixpath
import stat
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path

from ...config import ENV_NAME
from ...errors import ConfigError

WORKSPACE = "/workspace"
CONFIG_DIR = "/channelcoder/claude"
HOME = "/home/sandbox"
CA_FILE = "/channelcoder/ca.crt"
RESERVED = (WORKSPACE, CONFIG_DIR, HOME, CA_FILE, "/channelcoder", "/tmp")
SYSTEM_PREFIXES = ("/proc", "/sys", "/dev")
SOCKET_NAMES = ("docker.sock", "containerd.sock", "podman.sock")
RESERVED_ENV = ("CLAUDE_CONFIG_DIR",)
MODES = ("ro", "rw")


@dataclass(frozen=True)
class Mount:
    host: Path
    container: str
    read_only: bool = False

    @property
    def bind(self) -> str:
        """The `docker run -v` form."""
        return f"{self.host}:{self.container}:{'ro' if self.read_only else 'rw'}"


def parse_mount(spec: str, workspace: Path, *, force: bool = False) -> Mount:
    """One `host:container[:ro|rw]` spec, checked. Raises ConfigError naming the problem."""
    parts = spec.split(":")
    if len(parts) not in (2, 3) or not parts[0] or not parts[1]:
        raise ConfigError(f"mount {spec!r} is not HOST:CONTAINER[:ro|rw]",
                          hint="e.g. --docker-mount ./data:/data:ro")
    host_text, container, mode = parts[0], parts[1], parts[2] if len(parts) == 3 else "rw"
    if mode not in MODES:
        raise ConfigError(f"mount {spec!r} has an unknown mode {mode!r}",
                          hint="the mode is ro (read-only) or rw (read-write)")
    host = _host_path(host_text, workspace, spec)
    _check_container_path(container, spec)
    if not force:
        check_host_policy(host, spec)
    return Mount(host=host, container=posixpath.normpath(container), read_only=mode == "ro")


def parse_mounts(specs: Iterable[str], workspace: Path, *, force: bool = False) -> list[Mount]:
    mounts = [parse_mount(spec, workspace, force=force) for spec in specs]
    seen: set[str] = set()
    for mount in mounts:
        if mount.container in seen:
            raise ConfigError(f"two mounts target {mount.container}",
                              hint="give each mount its own container path")
        seen.add(mount.container)
    return mounts


def _host_path(text: str, workspace: Path, spec: str) -> Path:
    path = Path(text).expanduser()
    if not path.is_absolute():
        path = workspace / path
    try:
        return path.resolve(strict=True)
    except (OSError, RuntimeError):
        raise ConfigError(f"mount {spec!r}: the host path {path} does not exist",
                          hint="create it first, or fix the path (relative paths start at the "
                               "workspace)") from None


def _check_container_path(container: str, spec: str) -> None:
    if not container.startswith("/"):
        raise ConfigError(f"mount {spec!r}: the container path {container!r} is not absolute",
                          hint="container paths start with /, e.g. /data")
    normal = posixpath.normpath(container)
    if ".." in container.split("/") or normal == "/" or normal.startswith("//"):
        raise ConfigError(f"mount {spec!r}: the container path {container!r} is not allowed",
                          hint="mount at a plain absolute path such as /data")
    if normal in RESERVED:
        raise ConfigError(f"mount {spec!r}: {normal} is used by the sandbox itself",
                          hint=f"pick another container path (reserved: {', '.join(RESERVED)})")
    if any(normal == p or normal.startswith(p + "/") for p in SYSTEM_PREFIXES):
        raise ConfigError(f"mount {spec!r}: the container path {normal} is a system directory")


def check_host_policy(host: Path, spec: str) -> None:
    """Refuse handing the sandbox `/`, the Docker socket or the home directory itself."""
    force_hint = "this would hand the sandbox control of the host; mount a narrower directory"
    if host == Path("/"):
        raise ConfigError(f"mount {spec!r}: refusing to mount the host's root directory",
                          hint=force_hint)
    if _is_engine_socket(host):
        raise ConfigError(f"mount {spec!r}: refusing to mount the Docker socket into the sandbox",
                          hint=force_hint)
    home = Path.home().resolve()
    if host == home:
        raise ConfigError(f"mount {spec!r}: refusing to mount your whole home directory",
                          hint="mount the directory the job needs, e.g. ~/data:/data:ro")


def _is_engine_socket(host: Path) -> bool:
    """The path is a container engine's socket, or a directory holding one (/run, /var/run)."""
    try:
        mode = host.stat().st_mode
    except OSError:
        return False
    if stat.S_ISSOCK(mode):
        return host.name in SOCKET_NAMES or host == _engine_socket()
    if stat.S_ISDIR(mode):
        socket = _engine_socket()
        if socket is not None and (host == socket.parent or host in socket.parents):
            return True
        return any((host / name).exists() for name in SOCKET_NAMES)
    return False


def _engine_socket() -> Path | None:
    host = os.environ.get("DOCKER_HOST", "unix:///var/run/docker.sock")
    if not host.startswith("unix://"):
        return None
    try:
        return Path(host[len("unix://"):]).resolve()
    except OSError:
        return None


def check_env(env: Mapping[str, str]) -> dict[str, str]:
    """Validated extra environment. Names only in messages, never values."""
    out: dict[str, str] = {}
    for name, value in env.items():
        if not isinstance(name, str) or not ENV_NAME.match(name):
            raise ConfigError(f"docker env: invalid variable name {name!r}",
                              hint="names are letters, digits and _, not starting with a digit")
        if name in RESERVED_ENV:
            raise ConfigError(f"docker env: {name} is managed by channelcoder",
                              hint="sessions keep their own Claude config dir; drop this variable")
        if "\0" in str(value):
            raise ConfigError(f"docker env: the value of {name} contains a NUL byte")
        out[name] = str(value)
    return out
