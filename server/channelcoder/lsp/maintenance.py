"""The housekeeping commands: buildImage, doctor, sessions, resetSession."""

from __future__ import annotations

import logging
import os
import subprocess
from pathlib import Path
from typing import TYPE_CHECKING, Any

import anyio
from lsprotocol import types

from ..claude.events import Status
from ..config import DockerOptions, build_options
from ..errors import ChannelCoderError, UsageError
from ..runner import LaunchSpec
from . import logs
from .describe import Describer
from .job_requests import project_layer
from .progress import JobProgress
from .settings import with_editor_defaults

if TYPE_CHECKING:
    from .server import ChannelCoderServer

log = logging.getLogger(__name__)


async def build_image(ls: ChannelCoderServer, progress: JobProgress, *, force: bool) -> Any:
    from ..sandbox.manager import SandboxManager

    root = ls.default_root()
    if root is None:
        raise UsageError("no workspace folder is open", hint="open the project folder first")
    layer = with_editor_defaults(ls.settings.layer, await anyio.to_thread.run_sync(
        project_layer, root))
    options = build_options(layer)
    docker = options.docker or DockerOptions()
    if force:
        docker = DockerOptions(**{**docker.__dict__, "no_cache": True})
    options = options.replace(docker=docker)
    manager = SandboxManager.shared()
    describer = Describer()
    last, image = "", None
    async with progress:
        try:
            resolve = getattr(manager, "resolve_image", None)
            if resolve is not None:
                items = resolve(docker, root, force_build=force)
            else:  # a manager without resolve_image: the Backend protocol's prepare()
                items = manager.prepare(LaunchSpec(argv=["claude"], cwd=root, workspace=root,
                                                   options=options, job_id="build-image"))
            async for item in items:
                if isinstance(item, Status):
                    message = describer.message(item)
                    if message:
                        last = item.message or message
                        progress.report(message)
                else:
                    image = getattr(item, "ref", None)
        except ChannelCoderError as exc:
            progress.end_message = f"failed: {exc.message}"
            hint = f" ({exc.hint})" if exc.hint else ""
            ls.show(types.MessageType.Error, f"Building the sandbox image failed: {exc.message}"
                    f"{hint}")
            return {"ok": False, "image": None, "message": exc.message}
        image = image or _image_name(last)
        progress.end_message = f"ready: {image}" if image else "ready"
    return {"ok": True, "image": image, "message": last or "the sandbox image is ready"}


def _image_name(message: str) -> str | None:
    for word in message.replace(",", " ").split():
        if ":" in word and not word.endswith(":") and "/" not in word[:1]:
            return word.strip("'\"()")
    return None


async def doctor(ls: ChannelCoderServer) -> dict[str, Any]:
    root = ls.default_root()
    checks = await anyio.to_thread.run_sync(_checks, root, abandon_on_cancel=True)
    log_path = logs.log_file()
    checks.insert(0, {"name": "language server", "ok": True,
                      "detail": f"channelcoder lsp {ls.version}, log file {log_path}", "hint": ""})
    ok = all(check["ok"] for check in checks)
    lines = ["# channelcoder doctor", ""]
    for check in checks:
        mark = "✓" if check["ok"] else "✗"
        lines.append(f"- {mark} **{check['name']}**: {check['detail']}")
        if check["hint"] and not check["ok"]:
            lines.append(f"  - hint: {check['hint']}")
    report = "\n".join(lines) + "\n"
    from .offers import write_document

    path = await anyio.to_thread.run_sync(write_document, "reports", "doctor.md", report)
    ls.spawn(lambda: ls.show_document_or_log(path, report))
    return {"ok": ok, "checks": checks, "logFile": str(log_path) if log_path else None,
            "report": report}


def _check(name: str, ok: bool, detail: str, hint: str = "") -> dict[str, Any]:
    return {"name": name, "ok": ok, "detail": detail, "hint": hint}


def _checks(root: Path | None) -> list[dict[str, Any]]:
    from ..native import find_claude
    from ..trust import is_trusted

    checks: list[dict[str, Any]] = []
    try:
        import docker

        client = docker.from_env(timeout=5)
        version = client.version().get("Version", "?")
        checks.append(_check("docker engine", True, f"reachable (engine {version})"))
        client.close()
    except Exception as exc:
        checks.append(_check("docker engine", False, f"not reachable: {str(exc)[:200]}",
                             "start Docker (or run 'make engine'), or check DOCKER_HOST"))
    try:
        binary = find_claude()
        out = subprocess.run([binary, "--version"], capture_output=True, text=True, timeout=20,
                             stdin=subprocess.DEVNULL)
        checks.append(_check("claude cli (host)", out.returncode == 0,
                             f"{out.stdout.strip() or out.stderr.strip()[:200]} at {binary}"))
    except (ChannelCoderError, OSError, subprocess.SubprocessError) as exc:
        checks.append(_check("claude cli (host)", True,
                             f"not on this host ({getattr(exc, 'message', exc)}); "
                             "the sandbox image has its own"))
    checks.append(_credentials())
    if root is not None:
        trusted = is_trusted(root)
        checks.append(_check("workspace trust", True,
                             f"{root} is {'trusted' if trusted else 'not trusted'}",
                             "" if trusted else "channelcoder trust"))
    return checks


def _credentials() -> dict[str, Any]:
    for name in ("ANTHROPIC_API_KEY", "CLAUDE_CODE_OAUTH_TOKEN", "ANTHROPIC_AUTH_TOKEN"):
        if os.environ.get(name):
            return _check("credentials", True, f"from ${name}")
    config = Path(os.environ.get("CLAUDE_CONFIG_DIR") or Path.home() / ".claude")
    if (config / ".credentials.json").is_file():
        return _check("credentials", True, f"from {config / '.credentials.json'}")
    return _check("credentials", False, "none found",
                  "set ANTHROPIC_API_KEY or CLAUDE_CODE_OAUTH_TOKEN, or run 'claude' and /login")


def list_sessions() -> list[dict[str, Any]]:
    try:
        from .. import sessions
    except ImportError:
        return []
    out: list[dict[str, Any]] = []
    for state in sessions.list_sessions():
        out.append({"name": state.name, "sessionId": state.current_session_id,
                    "turns": state.metadata.get("turns", 0),
                    "lastActive": state.metadata.get("lastActive"),
                    "workspace": state.workspace})
    return out


def remove_session(name: str) -> bool:
    try:
        from .. import sessions
    except ImportError:
        return False
    return bool(sessions.remove(name))
