"""A proposal's file changes -> one WorkspaceEdit for `workspace/applyEdit`.

Two ways to build it:

- **offer** (right after the job): edits against the snapshot's base text; open documents carry
  the version they had when the job started, so a buffer edited since is refused by the client.
  A closed file whose disk text no longer equals the base makes the proposal *stale*: nothing is
  sent, `applyProposal` rebases it.
- **rebase** (`applyProposal`): every hunk moved onto the current text where the lines it
  replaces are unchanged, with the current versions; where the user changed the same lines,
  both versions go in between conflict markers (`<<<<<<<`, `=======`, `>>>>>>>`) to resolve.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from lsprotocol import types

from ..claude.events import FileChange
from .hunks import Hunk, diff_hunks, hunks_to_edits, rebase
from .proposal_store import Proposal

TextEditLike = types.TextEdit | types.AnnotatedTextEdit
DocumentChange = types.TextDocumentEdit | types.CreateFile | types.RenameFile | types.DeleteFile


@dataclass(frozen=True)
class EditCaps:
    """What the client's applyEdit understands."""

    encoding: str = "utf-16"
    document_changes: bool = True
    resource_operations: frozenset[str] = frozenset({"create", "rename", "delete"})
    annotations: bool = True

    @classmethod
    def from_client(cls, caps: types.ClientCapabilities | None, encoding: str) -> EditCaps:
        edit = caps.workspace.workspace_edit if caps and caps.workspace else None
        operations = frozenset(types.ResourceOperationKind(op).value
                               for op in (edit.resource_operations or [])) if edit else frozenset()
        return cls(
            encoding=encoding,
            document_changes=bool(edit and (edit.document_changes or operations)),
            resource_operations=operations if edit and (edit.document_changes or operations)
            else frozenset(),
            annotations=bool(edit and edit.change_annotation_support is not None),
        )


@dataclass(frozen=True)
class Current:
    """A file as the user has it now: an open buffer (version set) or the disk."""

    exists: bool
    text: str | None = None
    version: int | None = None
    uri: str | None = None  # the client's spelling of an open document's URI


@dataclass
class Skipped:
    path: str
    reason: str
    hunks: int = 0

    def to_json(self) -> dict[str, Any]:
        return {"path": self.path, "reason": self.reason, "hunks": self.hunks}


@dataclass
class BuiltEdit:
    edit: types.WorkspaceEdit | None = None
    stale: list[str] = field(default_factory=list)
    skipped: list[Skipped] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    files: int = 0
    conflicts: dict[str, int] = field(default_factory=dict)


def paths_involved(proposal: Proposal) -> list[str]:
    out: list[str] = []
    for change in proposal.files:
        out.append(change.path)
        if change.old_path:
            out.append(change.old_path)
    return out


def file_uri(root: Path, path: str) -> str:
    target = Path(path)
    return (target if target.is_absolute() else root / target).as_uri()


def build_edit(proposal: Proposal, current: Mapping[str, Current], caps: EditCaps, *,
               rebased: bool) -> BuiltEdit:
    builder = _Builder(proposal, current, caps, rebased)
    for change in proposal.files:
        builder.add(change)
    return builder.result()


class _Builder:
    def __init__(self, proposal: Proposal, current: Mapping[str, Current], caps: EditCaps,
                 rebased: bool) -> None:
        self.proposal = proposal
        self.root = Path(proposal.workspace)
        self.current = current
        self.caps = caps
        self.rebased = rebased
        self.out = BuiltEdit()
        self.document_changes: list[DocumentChange] = []
        self.changes: dict[str, list[types.TextEdit]] = {}
        self.annotation = f"channelcoder:{proposal.job_id}"
        self.active = self.annotation
        # A file the host runs later gets an annotation of its own, so both editors flag it.
        self.host_run: dict[str, tuple[str, str]] = {}

    def _now(self, path: str) -> Current:
        return self.current.get(path, Current(exists=False))

    def _uri(self, path: str) -> str:
        return self._now(path).uri or file_uri(self.root, path)

    def add(self, change: FileChange) -> None:
        reason = self.proposal.runs_on_host.get(change.path)
        self.active = self.annotation
        if reason is not None:
            self.active = f"channelcoder-hostrun:{self.proposal.job_id}:{len(self.host_run)}"
            self.host_run[self.active] = (change.path, reason)
        if change.binary:
            self.out.notes.append(f"{change.path}: binary file {change.status}, not edited")
            return
        if change.mode_changed:
            self.out.notes.append(f"{change.path}: file mode changed, not applied")
        if change.status == "modified":
            self._modified(change)
        elif change.status == "added":
            self._added(change)
        elif change.status == "deleted":
            self._deleted(change)
        elif change.status == "renamed":
            self._renamed(change)

    # -- per status --------------------------------------------------------------------------

    def _modified(self, change: FileChange) -> None:
        base, new = change.old_text or "", change.new_text or ""
        if base == new:
            return
        now = self._now(change.path)
        uri = self._uri(change.path)
        if not now.exists:
            self._skip_or_stale(change.path, "deleted since the job started")
            return
        if self.rebased:
            self._text_edit(change.path, uri, now.text, base, new, now.version)
            return
        recorded = self.proposal.versions.get(change.path)
        if recorded is not None and self.caps.document_changes:
            self._emit_text(uri, base, diff_hunks(base, new), recorded)
        elif now.text == base:
            self._emit_text(uri, base, diff_hunks(base, new), now.version)
        else:
            self.out.stale.append(change.path)

    def _added(self, change: FileChange) -> None:
        new = change.new_text or ""
        now = self._now(change.path)
        uri = self._uri(change.path)
        if now.exists:
            if now.text == new:
                return
            self._skip_or_stale(change.path, "a file with this name exists now")
            return
        if "create" not in self.caps.resource_operations:
            self.out.skipped.append(Skipped(change.path, "the editor cannot create files"))
            return
        self.document_changes.append(types.CreateFile(
            uri=uri, options=types.CreateFileOptions(overwrite=False, ignore_if_exists=False),
            annotation_id=self._annotation_id()))
        if new:
            self._emit_text(uri, "", diff_hunks("", new), None, created=True)
        self.out.files += 1

    def _deleted(self, change: FileChange) -> None:
        now = self._now(change.path)
        if not now.exists:
            return
        if now.text != (change.old_text or ""):
            self._skip_or_stale(change.path, "changed since the job started; not deleted")
            return
        if "delete" not in self.caps.resource_operations:
            self.out.skipped.append(Skipped(change.path, "the editor cannot delete files"))
            return
        self.document_changes.append(types.DeleteFile(
            uri=self._uri(change.path),
            options=types.DeleteFileOptions(recursive=False, ignore_if_not_exists=True),
            annotation_id=self._annotation_id()))
        self.out.files += 1

    def _renamed(self, change: FileChange) -> None:
        old_path = change.old_path or change.path
        old_now, new_now = self._now(old_path), self._now(change.path)
        base, new = change.old_text or "", change.new_text or ""
        if not old_now.exists or new_now.exists:
            self._skip_or_stale(change.path, f"{old_path} is gone or {change.path} exists now")
            return
        if "rename" not in self.caps.resource_operations:
            self.out.skipped.append(Skipped(change.path, "the editor cannot rename files"))
            return
        theirs = old_now.text if old_now.text is not None else None
        if theirs != base and not self.rebased:
            self.out.stale.append(old_path)
            return
        uri = file_uri(self.root, change.path)
        self.document_changes.append(types.RenameFile(
            old_uri=self._uri(old_path), new_uri=uri,
            options=types.RenameFileOptions(overwrite=False, ignore_if_exists=False),
            annotation_id=self._annotation_id()))
        self.out.files += 1
        if base != new:
            self._text_edit(change.path, uri, theirs, base, new, None, counted=True)

    # -- helpers -----------------------------------------------------------------------------

    def _skip_or_stale(self, path: str, reason: str) -> None:
        if self.rebased:
            self.out.skipped.append(Skipped(path, reason))
        else:
            self.out.stale.append(path)

    def _text_edit(self, path: str, uri: str, theirs: str | None, base: str, new: str,
                   version: int | None, counted: bool = False) -> None:
        """Rebase base→new onto `theirs` and emit what applies."""
        if theirs is None:
            self.out.skipped.append(Skipped(path, "cannot read the current text"))
            return
        result = rebase(base, new, theirs)
        hunks = sorted(result.hunks + [c.marked() for c in result.conflicted],
                       key=lambda h: (h.start, h.end))
        if result.conflicted:
            count = len(result.conflicted)
            self.out.conflicts[path] = count
            self.out.notes.append(
                f"{path}: {count} place{'s' if count != 1 else ''} you and Claude both changed "
                "kept both versions between <<<<<<< and >>>>>>> markers, to resolve")
        if hunks:
            self._emit_text(uri, theirs, hunks, version, created=counted)

    def _emit_text(self, uri: str, text: str, hunks: list[Hunk], version: int | None,
                   created: bool = False) -> None:
        if not hunks:
            return
        edits: list[TextEditLike] = []
        plain: list[types.TextEdit] = []
        for start, end, new_text in hunks_to_edits(text, hunks, self.caps.encoding):
            rng = types.Range(start=types.Position(*start), end=types.Position(*end))
            if self.caps.annotations and self.caps.document_changes:
                edits.append(types.AnnotatedTextEdit(range=rng, new_text=new_text,
                                                     annotation_id=self.active))
            else:
                plain.append(types.TextEdit(range=rng, new_text=new_text))
                edits.append(plain[-1])
        if not created:
            self.out.files += 1
        if self.caps.document_changes:
            self.document_changes.append(types.TextDocumentEdit(
                text_document=types.OptionalVersionedTextDocumentIdentifier(uri=uri,
                                                                            version=version),
                edits=edits))
        else:
            self.changes.setdefault(uri, []).extend(plain)

    def _annotation_id(self) -> str | None:
        return self.active if self.caps.annotations else None

    def result(self) -> BuiltEdit:
        if self.out.stale and not self.rebased:
            return self.out
        if not self.document_changes and not self.changes:
            return self.out
        if self.caps.document_changes:
            annotations = None
            if self.caps.annotations:
                annotations = {self.annotation: types.ChangeAnnotation(
                    label=self.proposal.label, needs_confirmation=True,
                    description=f"proposed by job {self.proposal.job_id}")}
                for key, (path, reason) in self.host_run.items():
                    annotations[key] = types.ChangeAnnotation(
                        label=f"⚠ Runs on your machine: {path} ({reason})",
                        needs_confirmation=True,
                        description="review it before you run it; proposed by job "
                                    f"{self.proposal.job_id}")
            self.out.edit = types.WorkspaceEdit(document_changes=self.document_changes,
                                                change_annotations=annotations)
        else:
            self.out.edit = types.WorkspaceEdit(changes=self.changes)
        return self.out
