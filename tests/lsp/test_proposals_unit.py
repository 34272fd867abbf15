"""Proposal edits from synthetic Changes (pure code): versions, staleness, resource operations."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from lsprotocol import types
from pygls.protocol import default_converter

from channelcoder.claude.events import FileChange
from channelcoder.lsp.proposal_store import Proposal, ProposalStore
from channelcoder.lsp.proposals import Current, EditCaps, build_edit, file_uri
from channelcoder.lsp.text import apply_edits

ROOT = Path("/ws")
OLD = "def f():\r\n    return 1\r\n\r\nprint(f())"
NEW = "def f():\r\n    return 2\r\n\r\nprint(f())"


def proposal(*files: FileChange, versions: dict[str, int] | None = None) -> Proposal:
    return Proposal(job_id="job1", workspace=str(ROOT), prompt="fix it", files=list(files),
                    versions=versions or {})


def wire(edit: types.WorkspaceEdit | None) -> dict[str, Any]:
    data = default_converter().unstructure(edit)
    assert isinstance(data, dict)
    return data


def apply_document_changes(text: str, data: dict[str, Any], uri: str, encoding: str) -> str:
    for change in data["documentChanges"]:
        if change.get("textDocument", {}).get("uri") == uri:
            edits = [((e["range"]["start"]["line"], e["range"]["start"]["character"]),
                      (e["range"]["end"]["line"], e["range"]["end"]["character"]), e["newText"])
                     for e in change["edits"]]
            text = apply_edits(text, edits, encoding)
    return text


def test_open_document_gets_the_version_the_job_started_from() -> None:
    uri = file_uri(ROOT, "a.py")
    prop = proposal(FileChange("a.py", "modified", old_text=OLD, new_text=NEW), versions={"a.py": 3})
    built = build_edit(prop, {"a.py": Current(True, OLD + "typed", 4)}, EditCaps(), rebased=False)
    data = wire(built.edit)
    change = data["documentChanges"][0]
    assert change["textDocument"] == {"uri": uri, "version": 3}
    assert change["edits"][0]["annotationId"] == "channelcoder:job1"
    assert data["changeAnnotations"]["channelcoder:job1"]["needsConfirmation"] is True
    assert apply_document_changes(OLD, data, uri, "utf-16") == NEW


def test_rebase_moves_the_edit_onto_the_users_new_text_with_the_current_version() -> None:
    uri = file_uri(ROOT, "a.py")
    prop = proposal(FileChange("a.py", "modified", old_text=OLD, new_text=NEW), versions={"a.py": 3})
    theirs = "# header\r\n" + OLD
    built = build_edit(prop, {"a.py": Current(True, theirs, 7)}, EditCaps(encoding="utf-8"),
                       rebased=True)
    data = wire(built.edit)
    assert data["documentChanges"][0]["textDocument"]["version"] == 7
    assert apply_document_changes(theirs, data, uri, "utf-8") == "# header\r\n" + NEW
    assert built.skipped == []


def test_a_closed_file_changed_on_disk_makes_the_offer_stale() -> None:
    prop = proposal(FileChange("a.py", "modified", old_text=OLD, new_text=NEW))
    built = build_edit(prop, {"a.py": Current(True, OLD + "\n# edited on disk")}, EditCaps(),
                       rebased=False)
    assert built.edit is None and built.stale == ["a.py"]


def test_resource_operations_and_plain_edits_without_annotation_support() -> None:
    files = (
        FileChange("new.py", "added", new_text="x = 1\n"),
        FileChange("gone.py", "deleted", old_text="old\n"),
        FileChange("b.py", "renamed", old_path="a.py", old_text="a\n", new_text="b\n"),
        FileChange("logo.png", "modified", binary=True),
    )
    current = {"gone.py": Current(True, "old\n"), "a.py": Current(True, "a\n")}
    caps = EditCaps(annotations=False)
    built = build_edit(proposal(*files), current, caps, rebased=False)
    kinds = [c.get("kind", "edit") for c in wire(built.edit)["documentChanges"]]
    assert kinds == ["create", "edit", "delete", "rename", "edit"]
    assert built.files == 3 and any("logo.png" in note for note in built.notes)
    assert "changeAnnotations" not in wire(built.edit)


def test_client_without_resource_operations_is_told_what_was_left_out() -> None:
    caps = EditCaps.from_client(types.ClientCapabilities(), "utf-16")
    assert not caps.document_changes and not caps.annotations
    built = build_edit(proposal(FileChange("new.py", "added", new_text="x\n"),
                                FileChange("a.py", "modified", old_text=OLD, new_text=NEW)),
                       {"a.py": Current(True, OLD, 1)}, caps, rebased=False)
    assert [s.path for s in built.skipped] == ["new.py"]
    assert list(wire(built.edit)["changes"]) == [file_uri(ROOT, "a.py")]


def test_proposals_persist_and_expire(tmp_path: Path) -> None:
    store = ProposalStore(tmp_path)
    prop = proposal(FileChange("a.py", "modified", old_text=OLD, new_text=NEW))
    store.save(prop)
    loaded = store.load("job1")
    assert loaded is not None and loaded.files == prop.files
    assert [p.job_id for p in store.pending(ROOT)] == ["job1"]
    assert store.expire(max_age=3600) == []
    prop.created -= 8 * 24 * 3600
    store.save(prop)
    assert [p.job_id for p in store.expire()] == ["job1"] and store.pending() == []
    assert store.load("../etc/passwd") is None
