"""Removing a named session everywhere it left something.

`sessions.remove` forgets the session's file and review snapshot; a Docker session also left its
sandbox config dir (the transcripts `--resume` reads), perhaps a kept-warm sandbox and, on a
remote engine, the volumes its turns kept there. Those
belong to `sandbox/`, which builds on `sessions` — so the whole removal lives here, above both.
"""

from __future__ import annotations

import logging
import shutil
from pathlib import Path

log = logging.getLogger(__name__)


def remove_session(name: str) -> bool:
    """Remove the session `name` and what it left in the sandbox; False if there was none.
    Blocking; the sandbox part never raises."""
    from . import sessions
    from .sandbox.container.claude_config import config_dir_for
    from .sandbox.warm.session_backend import remove_for_session
    from .workspace.mirror import mirror_key, remove_mirror

    removed = sessions.remove(name)
    if removed is None:
        return False
    if removed.workspace is not None:
        path = config_dir_for(session=name, workspace=removed.workspace, job_id="", resume=None)
        if path.is_dir():
            shutil.rmtree(path, ignore_errors=True)
        remove_mirror(mirror_key("", name, removed.workspace))
    remove_for_session(name, removed.workspace)
    _remove_engine_volumes(name, removed.workspace)
    return True


def _remove_engine_volumes(name: str, workspace: Path | None) -> None:
    """What the session kept on a remote engine (the one configured now). Never raises."""
    from .sandbox import engine as eng
    from .sandbox.remote.volumes import remove_session_volumes

    try:
        gone = remove_session_volumes(eng.connect().api, name, workspace)
    except Exception as exc:
        log.debug("could not look for session %s's volumes on the engine: %s", name, exc)
        return
    if gone:
        log.info("removed %d volume(s) of session %s from the engine", len(gone), name)
