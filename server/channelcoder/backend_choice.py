"""Which backend runs a job: the one place that decides.

- No Docker: the host's claude (`native.NativeBackend`).
- A caller's own backend (a CLI run's head start, whose container is already starting).
- A standby sandbox the language server has ready for exactly this job.
- A Docker job of a saved named session with `keep_warm > 0`: the session's warm sandbox
  (`sandbox.warm.session_backend.WarmBackend`), which falls back to a one-shot container by itself.
- Any other Docker job: a one-shot container of the process's `SandboxManager`.
"""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING, Protocol

from .backend import Backend

if TYPE_CHECKING:
    from .request import Request
    from .sandbox.warm.head_start import HeadStart

log = logging.getLogger(__name__)


class StandbySource(Protocol):
    def take(self, request: Request, *, cold: Backend, saved_session: bool) -> Backend | None:
        """A backend serving `request` from a sandbox started ahead of time, or None. `cold`
        is the backend the job would get otherwise (the standby falls back to it);
        `saved_session` as for `choose_backend`."""


def choose_backend(request: Request, *, saved_session: bool = False,
                   standby: StandbySource | None = None) -> Backend:
    """The backend for `request`. `saved_session`: the job is a turn of a saved named session
    (an editor's per-job session is not), which keeps a warm sandbox between turns."""
    docker = request.options.docker
    if docker is None:
        from .native import NativeBackend

        return NativeBackend()
    from .sandbox.manager import SandboxManager

    manager = SandboxManager.shared()
    cold: Backend = manager
    if saved_session and request.options.session and docker.keep_warm > 0:
        from .sandbox.warm.session_backend import WarmBackend

        cold = WarmBackend(manager)
    if standby is not None:
        try:
            taken = standby.take(request, cold=cold, saved_session=saved_session)
        except Exception:
            log.exception("the standby sandbox could not be taken; starting cold")
            taken = None
        if taken is not None:
            return taken
    return cold


def launch_early(request: Request) -> HeadStart | None:
    """For a CLI run before its event loop exists: a plain Docker job's container, created and
    starting already (`sandbox.head_start`); run the job with `HeadStart.request` and the head
    start as its backend. None when the job is not that plain case."""
    if request.options.docker is None:
        return None
    from .sandbox.warm.head_start import HeadStart

    return HeadStart.begin(request)
