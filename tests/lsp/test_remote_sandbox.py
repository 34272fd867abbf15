"""The language server with a remote engine (`remote_engine`): an editor's job runs where none
of this machine's files can be mounted, on a review snapshot copied in with the unsaved buffer,
and its proposal arrives through the language server as it does with a local engine."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import pytest

from channelcoder.testing.fake_anthropic import Reply, ToolCall
from tests.lsp.conftest import Start
from tests.lsp.test_proposals import FIXED, SED, UNSAVED, diagnostic
from tests.plugins.remote_engine import RemoteEngine

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
