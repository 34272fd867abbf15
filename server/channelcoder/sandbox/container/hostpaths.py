"""Host paths in claude's argv, made valid inside the sandbox.

`--mcp-config FILE` names a host file the container cannot see: its JSON is passed inline
instead (and registered as a secret: MCP configs carry tokens). Paths in it under the job's
directory become `/workspace/…`; an MCP server that would run a host program outside the
workspace is refused with a hint, since that program does not exist in the sandbox.
`--add-dir DIR` becomes `/workspace/…` inside the workspace; outside it, it is mounted
read-write at the same path (the mount policy applies: not `/`, your home, the socket).
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from ...errors import ConfigError
from ...redact import register_secret
from .mounts import WORKSPACE, Mount, check_host_policy, parse_mount


def sandbox_argv(argv: Sequence[str], *, cwd: Path) -> tuple[list[str], list[Mount]]:
    """argv with host paths translated, and the extra mounts the translation needs."""
    out = list(argv)
    mounts: list[Mount] = []
    prompt_at = out.index("--") if "--" in out else len(out)
    for index in range(prompt_at - 1):
        if out[index] == "--mcp-config":
            out[index + 1] = inline_mcp_config(out[index + 1], cwd)
        elif out[index] == "--add-dir":
            out[index + 1], mount = add_dir(out[index + 1], cwd)
            if mount is not None and mount not in mounts:
                mounts.append(mount)
    return out, mounts


def inline_mcp_config(value: str, cwd: Path) -> str:
    text = value.strip()
    if not text.startswith("{"):
        path = Path(text).expanduser()
        path = path if path.is_absolute() else cwd / path
        try:
            text = path.read_text(encoding="utf-8")
        except OSError as exc:
            raise ConfigError(f"cannot read the MCP config {value}: {exc.strerror or exc}",
                              hint="pass a readable JSON file or an inline JSON object") from exc
    try:
        data = json.loads(text)
    except ValueError as exc:
        raise ConfigError("the MCP config is not valid JSON",
                          hint="check it with 'jq . FILE'") from exc
    servers = data.get("mcpServers", {}) if isinstance(data, dict) else {}
    if isinstance(servers, dict):
        for name, server in servers.items():
            if isinstance(server, dict):
                _translate_server(str(name), server, cwd.resolve())
    inline = json.dumps(data, separators=(",", ":"))
    register_secret(inline)
    return inline


def _translate_server(name: str, server: dict[str, Any], root: Path) -> None:
    if isinstance(server.get("command"), str):
        server["command"] = _in_sandbox(server["command"], root, name, "command")
    if isinstance(server.get("args"), list):
        server["args"] = [_in_sandbox(a, root, name, "argument") if isinstance(a, str) else a
                          for a in server["args"]]
    if isinstance(server.get("cwd"), str):
        server["cwd"] = _in_sandbox(server["cwd"], root, name, "cwd")


def _in_sandbox(value: str, root: Path, server: str, what: str) -> str:
    if not value.startswith(("/", "~")):
        return value
    path = Path(value).expanduser()
    try:
        resolved = path.resolve()
    except OSError:
        return value
    if resolved == root or resolved.is_relative_to(root):
        rel = resolved.relative_to(root).as_posix()
        return WORKSPACE if rel == "." else f"{WORKSPACE}/{rel}"
    if path.exists() and not _system_path(resolved):
        raise ConfigError(
            f"MCP server '{server}' names the host {what} {value}, which the sandbox cannot see",
            hint="install it in the sandbox image (.channelcoder/Dockerfile) and name it by "
                 "its path there, keep it inside the workspace, or run without --docker")
    return value


def _system_path(path: Path) -> bool:
    """Paths that exist in any Linux image (/usr/bin/env, /bin/sh): not host-specific."""
    return str(path).startswith(("/usr/", "/bin/", "/sbin/", "/lib", "/etc/", "/opt/"))


def add_dir(directory: str, cwd: Path) -> tuple[str, Mount | None]:
    """The container path for `--add-dir directory`, and the mount it needs (if outside)."""
    root = cwd.resolve()
    path = Path(directory).expanduser()
    resolved = (path if path.is_absolute() else cwd / path).resolve()
    if resolved == root or resolved.is_relative_to(root):
        rel = resolved.relative_to(root).as_posix()
        return (WORKSPACE if rel == "." else f"{WORKSPACE}/{rel}"), None
    try:
        check_host_policy(resolved, f"--add-dir {directory}")
        return str(resolved), parse_mount(f"{resolved}:{resolved}:rw", cwd)
    except ConfigError as exc:
        reason = exc.message.split(": ", 1)[-1]
        raise ConfigError(f"--add-dir {directory} cannot be given to the sandbox: {reason}",
                          hint=exc.hint) from None
