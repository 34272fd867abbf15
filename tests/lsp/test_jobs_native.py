"""Jobs through the language server on the host's claude (docker off), scripted model."""

from __future__ import annotations

from pathlib import Path

import pytest

from channelcoder.testing.fake_anthropic import Reply, ToolCall, Turn
from tests.lsp.conftest import Start, native, raw_request

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


async def test_palette_commands_use_the_last_code_action_context(scripted, lsp: Start,
                                                                 workspace: Path) -> None:
    api = scripted([Reply("Explained."), Reply("Fixed.")])
    session = await lsp(workspace, init=native(apply="direct"))
    uri = session.editor.open(workspace / "app.py")
    diagnostic = {"range": {"start": {"line": 0, "character": 0},
                            "end": {"line": 0, "character": 8}},
                  "message": "name is shouting", "severity": 3}
    await raw_request(session.client, "textDocument/codeAction", {
        "textDocument": {"uri": uri},
        "range": {"start": {"line": 0, "character": 0}, "end": {"line": 0, "character": 8}},
        "context": {"diagnostics": [diagnostic]}})
    asked = await session.command("channelcoder.ask")
    assert asked["ok"], asked
    prompt = api.agent_requests()[-1].last_user_text()
    assert "Explain the selected code" in prompt and "GREETING" in prompt
    assert "name is shouting" in prompt
    fixed = await session.command("channelcoder.fix")
    assert fixed["ok"], fixed
    assert "name is shouting" in api.agent_requests()[-1].last_user_text()


def test_tcp_serves_one_client(workspace: Path) -> None:
    import json
    import socket
    import subprocess
    import sys

    process = subprocess.Popen([sys.executable, "-m", "channelcoder", "lsp", "--tcp",
                                "127.0.0.1:0"], stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                               text=True)
    try:
        assert process.stderr is not None
        line = process.stderr.readline()
        assert "listening on" in line, line
        port = int(line.rsplit(",", 1)[1].strip(" )\n"))
        with socket.create_connection(("127.0.0.1", port), timeout=10) as sock:
            reader = sock.makefile("rb")

            def call(message: dict[str, object]) -> dict[str, object] | None:
                body = json.dumps(message).encode()
                sock.sendall(b"Content-Length: %d\r\n\r\n%s" % (len(body), body))
                if "id" not in message:
                    return None
                while True:
                    length = 0
                    while (header := reader.readline()) != b"\r\n":
                        if header.lower().startswith(b"content-length"):
                            length = int(header.split(b":")[1])
                    reply = json.loads(reader.read(length))
                    if reply.get("id") == message["id"] and "method" not in reply:
                        return dict(reply)

            init = call({"jsonrpc": "2.0", "id": 1, "method": "initialize", "params": {
                "processId": None, "rootUri": workspace.as_uri(), "capabilities": {}}})
            assert init is not None and "executeCommandProvider" in init["result"]["capabilities"]
            assert call({"jsonrpc": "2.0", "id": 2, "method": "shutdown"}) is not None
            call({"jsonrpc": "2.0", "method": "exit"})
        assert process.wait(10) == 0
    finally:
        process.kill()
        process.wait()
