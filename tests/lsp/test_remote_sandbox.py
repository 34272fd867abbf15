"""The language server with a remote engine (`remote_engine`): an editor's job runs where none
of this machine's files can be mounted, on a review snapshot copied in with the unsaved buffer,
and its proposal arrives through the language server as it does with a local engine — cold, or
in the standby sandbox the server keeps ready there."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import pytest

from channelcoder.testing.fake_anthropic import Reply, ToolCall
from tests.lsp.conftest import Start
from tests.lsp.test_proposals import FIXED, SED, UNSAVED, diagnostic
from tests.plugins.remote_engine import RemoteEngine
from tests.warm.test_standby import (
    fix,
    rejected_and_followed,
    standby_log,
    standby_ready,
    statuses,
)

pytestmark = [pytest.mark.docker, pytest.mark.usefixtures("claude_bin"),
              pytest.mark.filterwarnings("ignore:Unknown progress token"),
              pytest.mark.timeout(600)]


async def test_an_editor_job_on_a_remote_engine_proposes_its_fix(
        scripted: Any, lsp: Start, workspace: Path, sandbox_image: str,
        remote_engine: RemoteEngine) -> None:
    api = scripted([ToolCall("Bash", SED), Reply("Made the greeting longer.")])
    session = await lsp(workspace, env=remote_engine.tls_env(),
                        init={"docker": {"image": sandbox_image}, "standby": False})
    app = workspace / "app.py"
    on_disk = app.read_bytes()
    uri = session.editor.open(app)
    session.editor.type_text(uri, UNSAVED)
    reply = await session.command("channelcoder.fix", {"uri": uri, "diagnostic": diagnostic()})
    assert reply["ok"] is True and reply["proposalId"], reply
    assert any("# unsaved line" in t for t in api.agent_requests()[-1].texts()), \
        "the job on the remote engine did not see the unsaved buffer"
    await session.editor.wait_edit()
    assert session.editor.buffers[uri].text == FIXED
    assert app.read_bytes() == on_disk
    ran_on = remote_engine.client().api.events(
        since=0, until=int(time.time()) + 1, decode=True,
        filters={"event": "create", "label": f"io.channelcoder.job={reply['jobId']}"})
    assert list(ran_on), "the job's container was not made on the remote engine"


async def test_an_editor_job_on_a_remote_engine_takes_the_standby_made_there(
        scripted: Any, lsp: Start, workspace: Path, sandbox_image: str,
        remote_engine: RemoteEngine) -> None:
    api = scripted([ToolCall("Bash", SED), Reply("Made it longer."),
                    Reply("Kept it short instead.")])
    session = await lsp(workspace, env=remote_engine.tls_env(),
                        init={"docker": {"image": sandbox_image}, "streamEvents": True})
    client = remote_engine.client()
    standby = await standby_ready(client)
    inspected = client.api.inspect_container(standby)
    assert {m["Type"] for m in inspected["Mounts"]} == {"volume"}  # nothing of this machine
    session.editor.refuse_all = True
    reply = await fix(session, session.editor.open(workspace / "app.py"))
    assert f"using the standby sandbox {standby[:12]}" in statuses(session, reply["jobId"]), \
        standby_log()
    await session.editor.wait_edit()  # its proposal came back from over there
    # The conversation it had there goes on, cold, in the session's own volumes: the
    # follow-up after a rejection resumes it.
    last = await rejected_and_followed(session, reply["jobId"], "too long")
    assert last["type"] == "result" and last["ok"], last
    seen = "\n".join(api.agent_requests()[-1].texts())
    assert "too long" in seen and "Made it longer." in seen, seen
    await standby_ready(client, other_than=standby)  # the next one, there too
