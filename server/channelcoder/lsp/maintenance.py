"""The housekeeping commands: buildImage, doctor, sessions, resetSession."""

from __future__ import annotations

import logging
from pathlib import Path
from typing import TYPE_CHECKING, Any

import anyio
from lsprotocol import types

from ..claude.events import Status
from ..config import DockerOptions, build_options
from ..errors import ChannelCoderError, UsageError
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
            async for item in manager.resolve_image(docker, root, force_build=force):
                if isinstance(item, Status):
                    message = describer.message(item)
                    if message:
                        last = item.message or message
                        progress.report(message)
                else:
                    image = item.ref
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
    """The sandbox's own diagnosis (engine, image, claude in it, credentials, trust) plus ours."""
    from ..sandbox.diagnose import diagnose

    root = ls.default_root() or Path.cwd()
    layer = with_editor_defaults(ls.settings.layer, await anyio.to_thread.run_sync(
        project_layer, root))
    try:
        docker = build_options(layer).docker or DockerOptions()
    except ChannelCoderError:
        docker = DockerOptions()
    checks = [check.to_json() for check in await diagnose(root, docker)]
    log_path = logs.log_file()
    checks.insert(0, {"name": "language server", "ok": True,
                      "detail": f"channelcoder lsp {ls.version}, log file {log_path}", "hint": ""})
    standby = standby_state(ls)
    checks.insert(1, {"name": "standby sandbox", "ok": True, "detail": standby_detail(standby),
                      "hint": ""})
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
            "report": report, "standby": standby}


def standby_state(ls: ChannelCoderServer) -> dict[str, Any]:
    """The `standby` setting and what is there right now (`StandbyPool.describe`)."""
    setting = ls.settings.server.standby
    live = ls.standby.describe() if ls.standby is not None and setting else {"state": "off"}
    return {"setting": setting, **live}


def standby_detail(state: dict[str, Any]) -> str:
    where = f" for {state['workspace']}" if state.get("workspace") else ""
    if state["state"] == "ready":
        age = float(state["ageSeconds"])
        old = f"{age:.0f} s" if age < 120 else f"{age / 60:.0f} min"
        return (f"ready: container {state['container']}, image {state['image']}{where}, "
                f"{old} old")
    if state["state"] == "preparing":
        return f"being prepared{where}"
    if state["state"] == "none":
        return f"none{where}: {state.get('reason', '')}"
    return "off (the standby setting is false)" if not state["setting"] else \
        "off: no workspace folder to prepare one for"


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
    from ..session_cleanup import remove_session

    return remove_session(name)
