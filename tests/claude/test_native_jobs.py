"""End to end: the real pinned Claude CLI on the host against the scripted model."""

from __future__ import annotations

import time
import uuid
from pathlib import Path

import anyio
import pytest
from tests.conftest import git, processes_with

from channelcoder.claude.events import (
    Error,
    Init,
    Result,
    Status,
    Text,
    TextDelta,
    ToolResult,
    ToolUse,
)
from channelcoder.config import RunOptions
from channelcoder.jobs import Job, JobState
from channelcoder.request import Request
from channelcoder.testing.fake_anthropic import Failure, Reply, ToolCall, Turn

pytestmark = pytest.mark.usefixtures("claude_bin")


async def wait_gone(marker: str, guard: float = 10.0) -> float:
    start = time.monotonic()
    while processes_with(marker):
        assert time.monotonic() - start < guard, "claude still running"
        await anyio.sleep(0.05)
    return time.monotonic() - start


async def collect(job: Job) -> list[object]:
    return [event async for event in job.events()]


async def test_text_only_job(scripted, git_repo: Path) -> None:
    api = scripted([Turn([Reply("Hello from the scripted model.")], chunks=3)])
    events = await collect(Job(Request("say hello", workspace=git_repo)))
    assert isinstance(events[0], Init) or isinstance(events[1], Init)
    assert "".join(e.text for e in events if isinstance(e, TextDelta)) == \
        "Hello from the scripted model."
    result = events[-1]
    assert isinstance(result, Result) and result.ok and result.exit_code == 0
    assert result.text == "Hello from the scripted model." and result.session_id
    assert api.agent_requests()[0].last_user_text().endswith("say hello")


async def test_bash_and_edit_change_a_file_in_a_git_repo(scripted, git_repo: Path) -> None:
    app = git_repo / "app.py"
    scripted([
        ToolCall("Bash", {"command": "git status --short && echo ran-bash"}),
        ToolCall("Read", {"file_path": str(app)}),
        ToolCall("Edit", {"file_path": str(app), "old_string": "'hello'",
                          "new_string": "'hello, world'"}),
        Reply("Changed the greeting."),
    ])
    options = RunOptions(tools=("Bash", "Read", "Edit"))
    events = await collect(Job(Request("change the greeting", options, git_repo)))
    uses = [e for e in events if isinstance(e, ToolUse)]
    assert [u.name for u in uses] == ["Bash", "Read", "Edit"]
    outputs = [e for e in events if isinstance(e, ToolResult)]
    assert "ran-bash" in outputs[0].output and not any(o.is_error for o in outputs)
    assert isinstance(events[-1], Result) and events[-1].ok
    assert app.read_text() == "GREETING = 'hello, world'\n"
    assert "+GREETING = 'hello, world'" in git(git_repo, "diff")


async def test_authentication_failure_is_a_clear_error(scripted, git_repo: Path) -> None:
    scripted([Turn([Reply("never")], failure=Failure(401, 0, "invalid x-api-key"))])
    job = Job(Request("hi", workspace=git_repo))
    result = (await collect(job))[-1]
    assert isinstance(result, Result) and not result.ok
    assert result.error is not None and result.error.startswith("authentication failed")
    assert "ANTHROPIC_API_KEY" in result.hint
    assert job.state is JobState.FAILED


async def test_a_bad_key_fails_at_once_despite_the_clis_retries(scripted, git_repo: Path) -> None:
    """The API's 401 carries no x-should-retry, so the CLI, left at its default retries, would
    retry it ten times over about three minutes. The job stops at the first retry."""
    api = scripted([Turn([Reply("never")], failure=Failure(401, 0, "invalid x-api-key",
                                                          retry_header=False))])
    job = Job(Request("hi", workspace=git_repo))
    started = time.monotonic()
    events = await collect(job)
    assert time.monotonic() - started < 5
    assert isinstance(events[-1], Error) and events[-1].code == "auth"
    assert "401" in events[-1].message and "ANTHROPIC_API_KEY" in (events[-1].hint or "")
    assert job.state is JobState.FAILED
    assert len(api.agent_requests()) <= 2


async def test_each_retry_is_shown_and_the_job_still_succeeds(scripted, git_repo: Path) -> None:
    scripted([Turn([Reply("Answered after retries.")], failure=Failure(529, 2, "Overloaded"))])
    events = await collect(Job(Request("hi", workspace=git_repo)))
    retrying = [e for e in events if isinstance(e, Status) and e.phase == "retrying"]
    assert [e.message.split(";")[0] for e in retrying] == [
        "the API answered 529 (overloaded)"] * 2
    assert "retry 1 of 10 in " in retrying[0].message
    assert isinstance(events[-1], Result) and events[-1].ok


async def test_cancel_mid_stream_kills_claude_and_ends_with_one_error(scripted,
                                                                    git_repo: Path) -> None:
    marker = f"cancel-me-{uuid.uuid4().hex}"
    scripted([Turn([Reply("word " * 60)], chunks=60, delay=0.25)])
    job = Job(Request(marker, workspace=git_repo))
    events: list[object] = []
    async for event in job.events():
        events.append(event)
        if isinstance(event, TextDelta) and len(events) < 50:
            assert processes_with(marker)
            job.cancel()
    assert isinstance(events[-1], Error) and events[-1].code == "cancelled"
    assert sum(isinstance(e, Error | Result) for e in events) == 1
    assert not any(isinstance(e, Text) for e in events)
    await wait_gone(marker)
    assert job.state is JobState.CANCELLED


async def test_timeout_kills_claude_with_its_own_error(scripted, git_repo: Path) -> None:
    marker = f"slow-{uuid.uuid4().hex}"
    scripted([Turn([Reply("slow " * 40)], chunks=40, delay=0.5)])
    events = await collect(Job(Request(marker, RunOptions(timeout=3), git_repo)))
    assert isinstance(events[-1], Error) and events[-1].code == "timeout"
    assert "3 s" in events[-1].message and "--timeout" in events[-1].hint
    await wait_gone(marker)


async def test_idle_watchdog_fires_when_claude_goes_quiet(scripted, git_repo: Path) -> None:
    marker = f"quiet-{uuid.uuid4().hex}"
    scripted([Turn([Reply("late")], first_delay=30)])
    events = await collect(Job(Request(marker, RunOptions(idle_timeout=4), git_repo)))
    assert isinstance(events[-1], Error) and events[-1].code == "idle-timeout"
    await wait_gone(marker)


async def test_abandoning_the_stream_stops_claude(scripted, git_repo: Path) -> None:
    marker = f"abandon-{uuid.uuid4().hex}"
    scripted([Turn([Reply("x " * 50)], chunks=50, delay=0.2)])
    stream = Job(Request(marker, workspace=git_repo)).events()
    async for event in stream:
        if isinstance(event, TextDelta):
            break
    await stream.aclose()
    await wait_gone(marker)


async def test_missing_claude_binary_names_the_install_command(git_repo: Path) -> None:
    options = RunOptions(claude_path=str(git_repo / "no-such-claude"))
    events = await collect(Job(Request("hi", options, git_repo)))
    assert isinstance(events[-1], Error) and events[-1].code == "claude-not-found"
    assert "npm install" in events[-1].hint
