"""Review snapshots (apply="propose"): the job works on a private copy; its edits come back as Changes.

A snapshot lives under `<state>/snapshots/<id>/` and never touches the user's working tree:

    meta.json       workspace, base commit, owner, times
    tree/           what the job sees (mounted at /workspace in the sandbox)
    tree/.git       for a git workspace: its own repository borrowing the user's objects
                    (alternates), HEAD and index as the user has them, so `git status` and
                    `git diff` inside show the user's uncommitted work as uncommitted
    git/            for a workspace that is not a git repository: bookkeeping only, outside tree/
    proposal.diff   the last collected diff

The modules, bottom up: `store` (where snapshots live, their locks, discarding and expiring),
`gitdir` (a snapshot's own repository), `changes` (reading a job's edits), `model` (the
`Snapshot` a job and its reviewers hold), `userstate` (the user's files as a tree), `spares`
(snapshots made ahead of time) and `create` (making one). This package's names below are what
the rest of channelcoder uses.
"""

from .create import DEFAULT_MAX_BYTES, create_snapshot, prepare_spare
from .model import Snapshot, apply_hint, open_snapshot
from .spares import spares_enabled
from .store import EXPIRY, discard, list_snapshots, reap_expired, snapshots_dir

__all__ = ["DEFAULT_MAX_BYTES", "EXPIRY", "Snapshot", "apply_hint", "create_snapshot", "discard",
           "list_snapshots", "open_snapshot", "prepare_spare", "reap_expired", "snapshots_dir",
           "spares_enabled"]
