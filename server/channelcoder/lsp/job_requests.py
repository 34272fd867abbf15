"""Editor command -> `jobs.Request`, through `api.build_request` (blocking: run in a thread).

Adds what is particular to the editor: its defaults (Docker on, propose mode) below the
project file, and an automatic, unsaved session for proposing jobs, so that rejecting a
proposal with a reason can continue the very same Claude conversation.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ..api import build_request
from ..config import load_project_file, normalize_layer, untrusted_view
from ..errors import ChannelCoderError
from ..request import Request
from ..trust import is_trusted
from .settings import with_editor_defaults

log = logging.getLogger(__name__)

AUTO_SESSION_PREFIX = "lsp-"


@dataclass
class BuiltJob:
    request: Request
    notices: list[str] = field(default_factory=list)
    auto_session: bool = False


def project_layer(root: Path) -> dict[str, Any]:
    """The project file as it applies here (trust-filtered); {} when unreadable."""
    try:
        layer = load_project_file(root)
    except ChannelCoderError:
        return {}  # build_request reports it
    return layer if is_trusted(root) else untrusted_view(layer)[0]


def build_job_request(source: str | Path, *, flags: Mapping[str, Any],
                      data: Mapping[str, Any] | None, workspace: Path,
                      settings: Mapping[str, Any], buffers: Mapping[str, str], job_id: str,
                      auto_session: bool) -> BuiltJob:
    layer = with_editor_defaults(settings, project_layer(workspace))
    built = build_request(source, flags=flags, data=data, workspace=workspace, settings=layer,
                          buffers=buffers, job_id=job_id)
    out = BuiltJob(request=built, notices=list(built.notices))
    if (auto_session and built.options.apply == "propose" and not built.options.session
            and not normalize_layer(flags, "arguments").get("resume")):
        name = AUTO_SESSION_PREFIX + job_id
        if _create_unsaved_session(name, workspace):
            built.options = built.options.replace(session=name)
            out.auto_session = True
    return out


def _create_unsaved_session(name: str, workspace: Path) -> bool:
    from .. import sessions

    try:
        sessions.create(name, workspace=workspace, saved=False)
    except (ChannelCoderError, OSError) as exc:
        log.warning("could not make a session for the job: %s", exc)
        return False
    return True


def remove_auto_session(name: str | None) -> None:
    if not name or not name.startswith(AUTO_SESSION_PREFIX):
        return
    from ..session_cleanup import remove_session

    try:
        remove_session(name)
    except Exception as exc:
        log.debug("could not remove session %s: %s", name, exc)
