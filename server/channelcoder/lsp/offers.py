"""The proposal flow: keep a job's changes, offer them, re-offer rebased, reject with a reason.

Offering never blocks a command's reply: `offer()` runs after the reply went out (see
`commands._after_reply`). A proposal is removed only when the client applied it or the user
rejected it (or it expired); anything else keeps it for `channelcoder.applyProposal`.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Any
from urllib.parse import unquote

import anyio
from lsprotocol import types

from ..errors import UsageError
from ..owner import owner_label
from .job_requests import remove_auto_session
from .proposal_store import Proposal, ProposalStore
from .proposals import BuiltEdit, Current, EditCaps, build_edit, paths_involved

if TYPE_CHECKING:
    from .runs import LspJob
    from .server import ChannelCoderServer

log = logging.getLogger(__name__)


class Offers:
    def __init__(self, server: ChannelCoderServer, store: ProposalStore | None = None) -> None:
        self._server = server
        self.store = store or ProposalStore()
        self._busy: set[str] = set()

    # -- after a job ---------------------------------------------------------------------------

    async def keep(self, run: LspJob) -> None:
        """Persist a propose-mode job's changes as a proposal (ask jobs never propose)."""
        job = run.job
        changes = job.changes
        proposing = job.request.options.apply == "propose" and run.kind != "ask"
        if changes is None or not changes.files or not proposing:
            user_session = job.request.options.session and not run.auto_session
            await self._free(changes.base if changes and not user_session else "",
                             job.request.options.session if run.auto_session else None)
            return
        proposal = Proposal(
            job_id=run.id, workspace=str(run.workspace), prompt=run.prompt or job.request.prompt,
            files=list(changes.files), versions=dict(run.versions), session_id=job.session_id,
            session=job.request.options.session, auto_session=run.auto_session,
            flags=dict(run.flags), base=changes.base, diff=changes.diff, kind=run.kind,
            runs_on_host={c.path: c.reason for c in job.runs_on_host}, owner=owner_label())
        await anyio.to_thread.run_sync(self.store.save, proposal)
        run.proposal = proposal

    # -- offering ------------------------------------------------------------------------------

    async def offer(self, proposal: Proposal) -> None:
        """The first offer, right after the job (edits against the snapshot's base)."""
        try:
            caps = self.caps()
            if not caps.annotations:
                await self._show_diff(proposal)
                return
            with self._exclusive(proposal.job_id):
                built = build_edit(proposal, await self.current(proposal), caps, rebased=False)
                if built.stale:
                    self._server.show(types.MessageType.Warning,
                                      f"Claude's proposal ({proposal.job_id}) was not offered: "
                                      f"{', '.join(built.stale)} changed since the job started. "
                                      "Run 'Apply proposal' (channelcoder.applyProposal) to get "
                                      "it rebased on your current text.")
                    return
                await self._send(proposal, built)
        except UsageError:
            return
        except Exception:
            log.exception("offering proposal %s failed", proposal.job_id)

    async def apply(self, job_id: str | None) -> dict[str, Any]:
        """`channelcoder.applyProposal`: re-offer rebased on the current text."""
        proposal = await self.find(job_id)
        if proposal.owner != owner_label():  # offered here now: this server's if it dies
            proposal.owner = owner_label()
            await anyio.to_thread.run_sync(self.store.save, proposal)
        with self._exclusive(proposal.job_id):
            built = build_edit(proposal, await self.current(proposal), self.caps(), rebased=True)
            applied, reason = await self._send(proposal, built)
        return {"jobId": proposal.job_id, "applied": applied, "reason": reason,
                "skipped": [s.to_json() for s in built.skipped],
                "conflicts": [{"path": path, "count": count}
                              for path, count in built.conflicts.items()]}

    async def recover(self, root: Path) -> list[str]:
        """Offer again, rebased, the proposals a dead server of this workspace had saved and
        nobody decided (the editor restarted it after a crash), one after another. Their ids."""
        found = await anyio.to_thread.run_sync(self.store.orphaned, root, owner_label())
        if not found:
            return []
        count = len(found)
        what = "a proposal" if count == 1 else f"{count} proposals"
        self._server.show(types.MessageType.Info,
                          f"Offering again {what} saved before the server stopped")
        for proposal in found:
            try:
                await self.apply(proposal.job_id)
            except UsageError as exc:
                log.info("not offering proposal %s again: %s", proposal.job_id, exc.message)
            except Exception:
                log.exception("offering proposal %s again failed", proposal.job_id)
        return [p.job_id for p in found]

    async def let_go(self) -> None:
        """A clean exit: this server's undecided proposals stay listed, not offered again."""
        await anyio.to_thread.run_sync(self.store.let_go, owner_label())

    async def reject(self, job_id: str | None) -> Proposal:
        proposal = await self.find(job_id)
        await anyio.to_thread.run_sync(self.store.remove, proposal.job_id)
        return proposal

    async def find(self, job_id: str | None) -> Proposal:
        root = self._server.default_root()
        if job_id is None:
            pending = await anyio.to_thread.run_sync(self.store.pending, root)
            if not pending:
                raise UsageError("there is no pending proposal",
                                 hint="run a job in propose mode first (the editor default)")
            return pending[0]
        proposal = await anyio.to_thread.run_sync(self.store.load, job_id)
        if proposal is None:
            raise UsageError(f"job {job_id} has no pending proposal",
                             hint="it was applied, rejected or expired, or the job changed "
                                  "nothing; see channelcoder.jobs")
        return proposal

    def pending_info(self) -> list[dict[str, Any]]:
        return [p.info() for p in self.store.pending(self._server.default_root())]

    # -- helpers -------------------------------------------------------------------------------

    @contextmanager
    def _exclusive(self, job_id: str) -> Iterator[None]:
        if job_id in self._busy:
            raise UsageError(f"the proposal of job {job_id} is being offered right now",
                             hint="answer the editor's prompt first")
        self._busy.add(job_id)
        try:
            yield
        finally:
            self._busy.discard(job_id)

    def caps(self) -> EditCaps:
        return EditCaps.from_client(self._server.client_capabilities, self._server.encoding)

    async def current(self, proposal: Proposal) -> dict[str, Current]:
        """Each involved file as the user has it now: open buffer, else disk."""
        root = Path(proposal.workspace)
        out: dict[str, Current] = {}
        closed: list[str] = []
        documents = self._server.workspace.text_documents
        for path in paths_involved(proposal):
            target = root / path
            document = documents.get(unquote(target.as_uri()))
            if document is not None:
                out[path] = Current(True, document.source, document.version, document.uri)
            else:
                closed.append(path)

        def read_disk() -> None:
            for path in closed:
                target = root / path
                if not target.exists():
                    out[path] = Current(False)
                    continue
                try:
                    out[path] = Current(True, target.read_bytes().decode("utf-8"))
                except (OSError, UnicodeDecodeError):
                    out[path] = Current(True, None)

        await anyio.to_thread.run_sync(read_disk)
        return out

    async def _send(self, proposal: Proposal, built: BuiltEdit) -> tuple[bool, str | None]:
        for note in built.notes + [f"{s.path}: {s.reason}" for s in built.skipped]:
            self._server.show(types.MessageType.Warning, f"Claude's proposal: {note}")
        if built.edit is None:
            reason = "nothing left to apply"
            if not built.skipped:
                await self.release(proposal)
            return False, reason
        try:
            response = await self._server.workspace_apply_edit_async(
                types.ApplyWorkspaceEditParams(edit=built.edit, label=proposal.label))
        except Exception as exc:
            log.warning("workspace/applyEdit failed: %s", exc)
            return False, f"the editor did not apply it: {exc}"
        if response is not None and response.applied:
            await self.release(proposal)
            return True, None
        reason = (response.failure_reason if response is not None else None) or "refused"
        self._server.show(types.MessageType.Warning,
                          f"Claude's proposal ({proposal.job_id}) was not applied ({reason}). "
                          "It is kept: run 'Apply proposal' (channelcoder.applyProposal) to "
                          "re-offer it on your current text, or reject it.")
        return False, reason

    async def release(self, proposal: Proposal) -> None:
        """The proposal is done with: forget it, its snapshot and its automatic session."""
        await anyio.to_thread.run_sync(self.store.remove, proposal.job_id)
        await self._free(proposal.base if not proposal.session or proposal.auto_session else "",
                         proposal.session if proposal.auto_session else None)

    async def _free(self, snapshot_id: str, auto_session: str | None) -> None:
        def free() -> None:
            if auto_session:
                remove_auto_session(auto_session)
            if snapshot_id:
                discard_snapshot(snapshot_id)

        await anyio.to_thread.run_sync(free)

    async def _show_diff(self, proposal: Proposal) -> None:
        count = len(proposal.files)
        path = await anyio.to_thread.run_sync(
            write_document, "proposals", f"{proposal.job_id}.diff", proposal.diff or _listing(
                proposal))
        await self._server.show_document_or_log(path, proposal.diff or _listing(proposal))
        self._server.show(types.MessageType.Info,
                          f"Claude proposes changes to {count} file{'s' if count != 1 else ''} "
                          f"(job {proposal.job_id}). Review the diff, then run 'Apply proposal' "
                          "(channelcoder.applyProposal) or 'Reject proposal'.")

    async def expire(self) -> None:
        gone = await anyio.to_thread.run_sync(self.store.expire)
        for proposal in gone:
            await self._free(proposal.base if not proposal.session or proposal.auto_session
                             else "", proposal.session if proposal.auto_session else None)


def _listing(proposal: Proposal) -> str:
    return "\n".join(f"{f.status}: {f.path}" for f in proposal.files) + "\n"


def write_document(kind: str, name: str, text: str) -> Path:
    from ..state import atomic_write, subdir

    path = subdir(kind) / name
    atomic_write(path, text)
    return path


def discard_snapshot(snapshot_id: str) -> None:
    """Free a job's snapshot once nothing needs it."""
    from ..workspace.snapshot import discard

    try:
        discard(snapshot_id)
    except Exception as exc:
        log.debug("could not discard snapshot %s: %s", snapshot_id, exc)

