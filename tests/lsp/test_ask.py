"""`channelcoder.ask`: read-only, and the answer opens as a document (or goes to the log)."""

from __future__ import annotations

from pathlib import Path

import pytest
from lsprotocol import types

from channelcoder.testing.fake_anthropic import Reply, ToolCall
from tests.lsp.conftest import Start, native, path_of, wait_for

pytestmark = pytest.mark.usefixtures("claude_bin")

ANSWER = "It defines GREETING.\n\nNothing else happens."
SELECTION = {"start": {"line": 0, "character": 0}, "end": {"line": 0, "character": 8}}


async def test_ask_cannot_write(scripted, lsp: Start, workspace: Path) -> None:
    app = workspace / "app.py"
    api = scripted([[ToolCall("Edit", {"file_path": str(app), "old_string": "hello",
                                       "new_string": "HACKED"}),
                     ToolCall("Bash", {"command": "echo HACKED > app.py"})]])
    session = await lsp(workspace, init=native(apply="direct"))
    before = app.read_bytes()
    uri = session.editor.open(app)
    reply = await session.command("channelcoder.ask", {"prompt": "change it", "uri": uri})
    assert sorted(api.agent_requests()[0].tools) == ["Glob", "Grep", "Read"]
    assert "is not offered" in reply["text"]
    assert app.read_bytes() == before and not session.editor.edits
    assert reply["proposalId"] is None and reply["changes"] == []


@pytest.mark.parametrize("caps", ["visual-studio-code", "neovim@0.7.0"])
async def test_ask_answers_as_a_document(scripted, lsp: Start, workspace: Path,
                                         caps: str) -> None:
    api = scripted([Reply(ANSWER)])
    session = await lsp(workspace, caps=caps, init=native())
    uri = session.editor.open(workspace / "app.py")
    reply = await session.command("channelcoder.ask", {"uri": uri, "range": SELECTION})
    assert reply["ok"] is True and reply["text"] == ANSWER, reply
    asked = api.agent_requests()[0].last_user_text()
    assert "Explain the selected code" in asked and "GREETING" in asked and "app.py" in asked
    if caps == "visual-studio-code":
        await wait_for(lambda: bool(session.client.shown_documents))
        shown = session.client.shown_documents[0]
        assert shown.uri.endswith(".md") and ANSWER in path_of(shown.uri).read_text()
    else:
        await wait_for(lambda: any(ANSWER in m.message for m in session.client.log_messages))
        assert any(m.type == types.MessageType.Info and "answered" in m.message
                   for m in session.client.messages)
