"""Pending proposals on disk: one JSON file per job under <state dir>/proposals/.

A proposal outlives the server (an editor restart must not lose reviewable work) until it is
applied, rejected or older than `MAX_AGE`. It names the server that offers it (`owner`) until
that server exits cleanly; one whose owner died (a crashed server) is offered again by the next
server in its workspace (`Offers.recover`).
"""

from __future__ import annotations

import dataclasses
import logging
import re
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ..claude.events import FileChange
from ..owner import owner_alive
from ..state import read_json, subdir, write_json

log = logging.getLogger(__name__)

MAX_AGE = 7 * 24 * 3600.0
JOB_ID = re.compile(r"^[A-Za-z0-9_][A-Za-z0-9_.-]{0,63}$")
FORMAT = 1


@dataclass
class Proposal:
    job_id: str
    workspace: str
    prompt: str
    files: list[FileChange]
    created: float = field(default_factory=time.time)
    versions: dict[str, int] = field(default_factory=dict)  # path -> open buffer's version
    session_id: str | None = None
    session: str | None = None
    auto_session: bool = False
    flags: dict[str, Any] = field(default_factory=dict)
    base: str = ""
    diff: str = ""
    kind: str = "run"
    runs_on_host: dict[str, str] = field(default_factory=dict)  # path -> what runs it
    owner: str | None = None  # the server offering it (`owner.owner_label()`), None once let go

    @property
    def label(self) -> str:
        first = " ".join(self.prompt.split())
        return "Claude: " + (first if len(first) <= 60 else first[:59] + "…")

    def to_json(self) -> dict[str, Any]:
        data = dataclasses.asdict(self)
        data["format"] = FORMAT
        return data

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> Proposal:
        files = [FileChange(**item) for item in data.get("files", [])]
        known = {f.name for f in dataclasses.fields(cls)} - {"files"}
        return cls(files=files, **{k: v for k, v in data.items() if k in known})

    def info(self) -> dict[str, Any]:
        return {"proposalId": self.job_id, "jobId": self.job_id, "created": self.created,
                "prompt": self.prompt[:200], "files": [f.path for f in self.files]}


class ProposalStore:
    def __init__(self, root: Path | None = None) -> None:
        self._root = root

    @property
    def root(self) -> Path:
        if self._root is None:
            self._root = subdir("proposals")
        return self._root

    def _path(self, job_id: str) -> Path:
        if not JOB_ID.match(job_id):
            raise ValueError(f"invalid job id {job_id!r}")
        return self.root / f"{job_id}.json"

    def save(self, proposal: Proposal) -> None:
        write_json(self._path(proposal.job_id), proposal.to_json())

    def load(self, job_id: str) -> Proposal | None:
        if not JOB_ID.match(job_id):
            return None
        data = read_json(self._path(job_id))
        if not isinstance(data, dict):
            return None
        try:
            return Proposal.from_json(data)
        except (TypeError, ValueError) as exc:
            log.warning("unreadable proposal %s: %s", job_id, exc)
            return None

    def remove(self, job_id: str) -> bool:
        try:
            self._path(job_id).unlink()
            return True
        except (FileNotFoundError, ValueError):
            return False

    def pending(self, workspace: Path | None = None) -> list[Proposal]:
        """Every readable proposal (of one workspace), newest first."""
        found: list[Proposal] = []
        for path in self.root.glob("*.json"):
            proposal = self.load(path.stem)
            if proposal is None:
                continue
            if workspace is None or proposal.workspace == str(workspace):
                found.append(proposal)
        return sorted(found, key=lambda p: p.created, reverse=True)

    def orphaned(self, workspace: Path, me: str) -> list[Proposal]:
        """The proposals of `workspace` whose server died before they were decided, now claimed
        for `me` (oldest first). A proposal of a live server (another editor's) is left alone;
        of two servers claiming at once, the one whose claim is on disk last gets it."""
        claimed: list[Proposal] = []
        for proposal in reversed(self.pending(workspace)):
            if proposal.owner is None or proposal.owner == me or owner_alive(proposal.owner):
                continue
            proposal.owner = me
            self.save(proposal)
            mine = self.load(proposal.job_id)
            if mine is not None and mine.owner == me:
                claimed.append(mine)
        return claimed

    def let_go(self, me: str) -> int:
        """At a clean exit: `me`'s proposals stay pending but are no longer anyone's to offer
        (the user closed the editor; they are listed, not offered again). How many."""
        count = 0
        for proposal in self.pending():
            if proposal.owner == me:
                proposal.owner = None
                self.save(proposal)
                count += 1
        return count

    def expire(self, max_age: float = MAX_AGE) -> list[Proposal]:
        """Remove proposals older than `max_age`; return them (their snapshots can go too)."""
        cutoff = time.time() - max_age
        gone = [p for p in self.pending() if p.created < cutoff]
        for proposal in gone:
            self.remove(proposal.job_id)
        return gone
