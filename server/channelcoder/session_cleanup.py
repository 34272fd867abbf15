"""Removing a named session everywhere it left something.

`sessions.remove` forgets the session's file and review snapshot; a Docker session also left its
sandbox config dir (the transcripts `--resume` reads) and perhaps a kept-warm sandbox. Those
belong to `sandbox/`, which builds on `sessions` — so the whole removal lives here, above both.
"""

from __future__ import annotations

import shutil


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
    return True
