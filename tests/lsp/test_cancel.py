"""Cancel a running job three ways; the job stops, the progress ends, the server keeps serving."""

from __future__ import annotations

import asyncio
import time
import uuid
from pathlib import Path

import pytest
from lsprotocol import types

from channelcoder.testing.fake_anthropic import Reply, ToolCall, Turn
from tests.conftest import processes_with
from tests.lsp.conftest import Session, Start, native, wait_for

pytestmark = pytest.mark.usefixtures("claude_bin")

SLOW = [ToolCall("Bash", {"command": "echo started"}), Turn([Reply("too late")], first_delay=60)]


async def start_slow_job(session: Session, marker: str) -> tuple[asyncio.Future[object], str]:
    job_id = f"cancel-{uuid.uuid4().hex[:6]}"
    reply = asyncio.ensure_future(session.command(
        "channelcoder.run", {"prompt": f"wait a while {marker}", "jobId": job_id}))
    await wait_for(lambda: any(e["type"] == "tool-result" for e in session.job_events(job_id)),
                   guard=30)
    assert processes_with(marker), "claude is not running"
    return reply, job_id


async def gone_within(marker: str) -> float:
    start = time.monotonic()
    await wait_for(lambda: not processes_with(marker), what="claude's exit")
    return time.monotonic() - start


def ended(session: Session, token: str) -> bool:
    return any(isinstance(r, types.WorkDoneProgressEnd) and r.message == "cancelled"
               for r in session.progress(token))


@pytest.mark.parametrize("how", ["progress", "command", "request"])
async def test_cancel_stops_the_job_and_ends_its_progress(scripted, lsp: Start, workspace: Path,
                                                          how: str) -> None:
    scripted(SLOW)
    session = await lsp(workspace, init=native(apply="direct", streamEvents=True))
    marker = uuid.uuid4().hex
    reply, job_id = await start_slow_job(session, marker)
    request_id = session.last_request
    info = (await session.command("channelcoder.jobs"))["jobs"][0]
    assert info["jobId"] == job_id and info["state"] == "running"
    if how == "progress":
        session.client.window_work_done_progress_cancel(
            types.WorkDoneProgressCancelParams(token=info["progressToken"]))
    elif how == "command":
        assert await session.command("channelcoder.cancel", {"jobId": job_id}) == \
            {"jobId": job_id, "cancelled": True}
    else:
        session.client.protocol.notify(types.CANCEL_REQUEST,
                                       types.CancelParams(id=request_id))
    await gone_within(marker)
    if how == "request":
        with pytest.raises(Exception, match="cancel"):
            await reply
    else:
        result = await reply
        assert result["ok"] is False and result["error"]["code"] == "cancelled"
    await wait_for(lambda: ended(session, info["progressToken"]))
    jobs = await session.command("channelcoder.jobs")
    assert jobs["jobs"][0]["state"] == "cancelled"
    assert not any(m.type == types.MessageType.Error for m in session.client.messages)


async def test_cancel_without_a_job_says_so(lsp: Start, workspace: Path) -> None:
    session = await lsp(workspace, init=native())
    assert await session.command("channelcoder.cancel") == {"jobId": None, "cancelled": False}
