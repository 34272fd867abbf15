"""Jobs through the language server on the host's claude (docker off), scripted model."""

from __future__ import annotations

from pathlib import Path

import pytest

from channelcoder.testing.fake_anthropic import Reply, ToolCall, Turn
from tests.lsp.conftest import Start, native

pytestmark = pytest.mark.usefixtures("claude_bin")


async def test_run_streams_progress_and_events_and_replies(scripted, lsp: Start,
                                                           workspace: Path) -> None:
    scripted([Turn([Reply("All done: the greeting is fine.")], chunks=5)])
    session = await lsp(workspace, init=native(apply="direct", streamEvents=True))
    reply = await session.command("channelcoder.run", {"prompt": "check the greeting",
                                                       "jobId": "job-1"})
    assert reply["jobId"] == "job-1" and reply["ok"] is True, reply
    assert reply["text"] == "All done: the greeting is fine."
    assert reply["sessionId"] and reply["proposalId"] is None and reply["error"] is None
    assert reply["changes"] == []
    (token, reports), = [(t, r) for t, r in session.client.progress_reports.items() if r]
    kinds = [type(r).__name__ for r in reports]
    assert kinds[0] == "WorkDoneProgressBegin" and kinds[-1] == "WorkDoneProgressEnd"
    assert "WorkDoneProgressReport" in kinds
    assert reports[0].cancellable is True and reports[0].title == "Claude: check the greeting"
    assert reports[-1].message.startswith("done in")
    events = session.job_events("job-1")
    assert events[0]["type"] == "status" and events[0]["phase"] == "queued"
    assert events[-1]["type"] == "result" and events[-1]["ok"] is True
    deltas = "".join(e["text"] for e in events if e["type"] == "text-delta")
    assert deltas == "All done: the greeting is fine."
    info = await session.command("channelcoder.jobs")
    assert info["jobs"][0]["jobId"] == "job-1" and info["jobs"][0]["state"] == "succeeded"
    assert info["jobs"][0]["progressToken"] == token


@pytest.mark.filterwarnings("ignore:Unknown progress token")
async def test_a_client_chosen_token_carries_the_progress(scripted, lsp: Start,
                                                          workspace: Path) -> None:
    scripted([ToolCall("Bash", {"command": "echo hi"}), Reply("done")])
    session = await lsp(workspace, init=native(apply="direct"))
    reply = await session.command("channelcoder.run", {"prompt": "run echo",
                                                       "workDoneToken": "client-token"})
    assert reply["ok"] is True
    reports = session.progress("client-token")
    assert type(reports[0]).__name__ == "WorkDoneProgressBegin"
    assert type(reports[-1]).__name__ == "WorkDoneProgressEnd"


async def test_a_failing_job_replies_not_ok_and_shows_the_error(lsp: Start,
                                                                workspace: Path) -> None:
    session = await lsp(workspace, init=native(apply="direct"),
                        env={"CHANNELCODER_CLAUDE": "/nonexistent/claude"})
    reply = await session.command("channelcoder.run", {"prompt": "anything"})
    assert reply["ok"] is False and reply["error"]["code"] == "claude-not-found"
    hint = reply["error"]["hint"]
    assert hint and any(m.startswith("Claude job failed: ") and hint in m
                        for m in session.errors())
