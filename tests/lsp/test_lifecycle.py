"""Concurrency, settings from every source, trust consent, logs without secrets."""

from __future__ import annotations

import asyncio
import sys
from pathlib import Path

import pytest
from lsprotocol import types

from channelcoder.testing.fake_anthropic import Reply, ToolCall, Turn
from tests.lsp.conftest import Start, native, wait_for

pytestmark = pytest.mark.usefixtures("claude_bin")


async def test_three_concurrent_jobs_each_with_progress_and_proposal(
        scripted, lsp: Start, workspace: Path) -> None:
    for name in ("a", "b", "c"):
        (workspace / f"{name}.txt").write_text(f"{name}\n")
    scripted([ToolCall("Bash", {"command": "for f in *.txt; do [ -w $f ] && echo x >> $f; done; "
                                           "sleep 0.3"}), Turn([Reply("ok")], first_delay=0.2)])
    session = await lsp(workspace, init=native(maxJobs=2))
    session.editor.refuse_all = True
    replies = await asyncio.gather(*(session.command(
        "channelcoder.run", {"prompt": f"job {n}", "jobId": f"job-{n}"}) for n in "abc"))
    assert [r["jobId"] for r in replies] == ["job-a", "job-b", "job-c"]
    assert all(r["ok"] and r["proposalId"] == r["jobId"] for r in replies), replies
    tokens = [t for t, reports in session.client.progress_reports.items() if reports]
    assert len(tokens) == 3
    for token in tokens:
        reports = session.progress(token)
        assert isinstance(reports[0], types.WorkDoneProgressBegin)
        assert isinstance(reports[-1], types.WorkDoneProgressEnd)
    await session.editor.wait_edit(3)
    pending = (await session.command("channelcoder.jobs"))["proposals"]
    assert sorted(p["jobId"] for p in pending) == ["job-a", "job-b", "job-c"]
    assert (workspace / "a.txt").read_text() == "a\n", "proposals must not touch the files"


async def test_settings_from_configuration_and_did_change(scripted, lsp: Start,
                                                          workspace: Path) -> None:
    api = scripted([Reply("first"), Reply("second")])
    session = await lsp(workspace, init=native(apply="direct"))
    session.client.set_configuration({"model": "model-from-configuration", "timeout": "soon"},
                                     section="channelcoder")
    session.client.workspace_did_change_configuration(
        types.DidChangeConfigurationParams(settings=None))
    await wait_for(lambda: any("'timeout'" in m.message for m in session.client.messages))
    await session.command("channelcoder.run", {"prompt": "one"})
    assert api.agent_requests()[-1].body["model"] == "model-from-configuration"
    session.client.workspace_did_change_configuration(types.DidChangeConfigurationParams(
        settings={"channelcoder": {"model": "model-from-change"}}))
    await session.command("channelcoder.run", {"prompt": "two"})
    assert api.agent_requests()[-1].body["model"] == "model-from-change"
    registered = {r.method for r in session.registrations}
    assert {"workspace/didChangeWatchedFiles", "workspace/didChangeConfiguration"} <= registered


async def test_trust_is_asked_once_and_remembered(lsp: Start, workspace: Path,
                                                  tmp_path: Path) -> None:
    (workspace / ".channelcoder").mkdir()
    (workspace / ".channelcoder" / "config.toml").write_text(
        "docker = false\nmcp_config = \"mcp.json\"\n")
    env = {"CHANNELCODER_STATE_DIR": str(tmp_path / "state")}
    first = await lsp(workspace, env=env, trust_answer="Trust workspace")
    await wait_for(lambda: bool(first.requests))
    assert "docker" in first.requests[0].message
    await wait_for(lambda: any("is trusted now" in m.message for m in first.client.messages))
    second = await lsp(workspace, env=env)
    await second.command("channelcoder.jobs")
    await asyncio.sleep(0.5)
    assert second.requests == []


async def test_logs_never_hold_a_secret_even_at_debug(scripted, lsp: Start, workspace: Path,
                                                      tmp_path: Path) -> None:
    planted = "sk-ant-api03-PLANTEDsecretVALUE1234567890"
    scripted([ToolCall("Bash", {"command": "echo key=$ANTHROPIC_API_KEY"}), Reply("hello")])
    log_file = tmp_path / "lsp.log"
    server = [sys.executable, "-m", "channelcoder", "lsp", "--log-level", "debug", "--log-file",
              str(log_file)]
    session = await lsp(workspace, server=server, env={"ANTHROPIC_API_KEY": planted},
                        init=native(apply="direct", verbose=True, streamEvents=True))
    reply = await session.command("channelcoder.run", {"prompt": f"echo {planted}",
                                                       "jobId": "leaky"})
    assert reply["ok"] is True
    outputs = [e["output"] for e in session.job_events("leaky") if e["type"] == "tool-result"]
    assert outputs and all(planted not in o for o in outputs), outputs
    with pytest.raises(Exception, match=r"\*\*\*"):
        await session.command("channelcoder.run", {"prompt": "x",
                                                   "options": {"maxTurns": planted}})
    await session.client.shutdown_session()
    text = log_file.read_text()
    assert "DEBUG" in text and "channelcoder" in text
    assert planted not in text
    for message in session.client.messages + session.client.log_messages:
        assert planted not in message.message


async def test_doctor_reports_the_log_file_and_sessions_can_be_reset(
        scripted, lsp: Start, workspace: Path, tmp_path: Path) -> None:
    scripted([Reply("one")])
    log_file = tmp_path / "doctor.log"
    session = await lsp(workspace, init=native(apply="direct"), server=[
        sys.executable, "-m", "channelcoder", "lsp", "--log-file", str(log_file)],
        env={"CHANNELCODER_STATE_DIR": str(tmp_path / "state")})
    report = await session.command("channelcoder.doctor")
    assert report["logFile"] == str(log_file)
    names = [check["name"] for check in report["checks"]]
    assert {"language server", "engine", "credentials", "trust"} <= set(names)
    assert str(log_file) in report["report"]
    await wait_for(lambda: bool(session.client.shown_documents))
    reply = await session.command("channelcoder.run", {"prompt": "hi",
                                                       "options": {"session": "mine"}})
    assert reply["ok"], reply
    listed = (await session.command("channelcoder.sessions"))["sessions"]
    assert [(s["name"], s["sessionId"]) for s in listed] == [("mine", reply["sessionId"])]
    assert await session.command("channelcoder.resetSession") == {"name": "mine",
                                                                  "removed": True}
    assert (await session.command("channelcoder.sessions"))["sessions"] == []
