"""Sessions end to end, natively: the real CLI resumes each turn; the Python API streams."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path

import anyio
import pytest

from channelcoder import Result, Session, TextDelta, session, stream
from channelcoder import sessions as store
from channelcoder.claude.events import Changes, Init, ToolResult
from channelcoder.errors import SessionError
from channelcoder.testing.fake_anthropic import Reply, ToolCall, Turn

pytestmark = pytest.mark.usefixtures("claude_bin")
CHANNELCODER = [sys.executable, "-m", "channelcoder"]


def saw(request_texts: list[str], *needles: str) -> bool:
    joined = "\n".join(request_texts)
    return all(needle in joined for needle in needles)


async def test_second_turn_resumes_the_first(scripted, git_repo: Path) -> None:
    api = scripted([Reply("The secret word is ORCHID."), Reply("You asked about ORCHID.")])
    s = session("two-turns", workspace=git_repo)
    first = await s.claude("remember a word")
    second = await s.claude("which word?")
    assert first.ok and second.ok and second.text == "You asked about ORCHID."
    last = api.agent_requests()[-1]
    assert saw(last.texts(), "remember a word", "The secret word is ORCHID.", "which word?")
    state = store.load("two-turns")
    assert state is not None and state.current_session_id == second.session_id
    assert [m["content"] for m in state.messages] == [
        "remember a word", "The secret word is ORCHID.", "which word?", "You asked about ORCHID."]
    # another process (or later) picks it up by name
    loaded = Session.load("two-turns")
    assert loaded.workspace == git_repo and loaded.session_id == second.session_id
    api = scripted([Reply("a"), Reply("b"), Reply("Still ORCHID.")])
    third = await loaded.claude("and now?")
    assert third.ok and saw(api.agent_requests()[-1].texts(), "The secret word is ORCHID.")


async def test_a_session_remembers_the_options_it_started_with(scripted, git_repo: Path) -> None:
    api = scripted([ToolCall("Bash", {"command": "echo first > first.txt"}), Reply("one"),
                    ToolCall("Bash", {"command": "cat first.txt"}), Reply("two")])
    s = session("remembers", workspace=git_repo)
    assert (await s.claude("turn one", tools=["Bash"], system="You are terse.")).ok
    later = Session.load("remembers")
    events = [e async for e in later.stream("turn two")]
    assert isinstance(events[-1], Result) and events[-1].ok
    assert "first" in next(e for e in events if isinstance(e, ToolResult)).output
    second_turn = api.agent_requests()[-1]
    assert second_turn.tools == ["Bash"] and "You are terse." in second_turn.system
    assert store.load("remembers").options == {  # type: ignore[union-attr]
        "tools": ["Bash"], "system": "You are terse."}


async def test_streaming_yields_text_before_the_model_has_finished(scripted,
                                                                   git_repo: Path) -> None:
    delay = 1.5
    scripted([Turn([Reply("one two three four")], chunks=4, delay=delay)])
    first_delta: float | None = None
    with anyio.fail_after(60):
        async for event in stream("count", workspace=git_repo):
            if isinstance(event, TextDelta) and first_delta is None:
                first_delta = time.monotonic()
            if isinstance(event, Result):
                ended = time.monotonic()
    assert first_delta is not None and event.ok
    # three more chunks were still held back by the model, each `delay` seconds apart
    assert ended - first_delta >= 2.5 * delay


async def test_unnamed_sessions_are_listed_after_save(scripted, git_repo: Path) -> None:
    scripted([Reply("hi")])
    s = session(workspace=git_repo)
    assert (await s.claude("hello")).ok
    assert s.name not in [x.name for x in store.list_sessions()]
    assert s.name in [x.name for x in store.list_sessions(include_unsaved=True)]
    path = s.save("kept-one")
    assert path.name == "kept-one.json" and s.name == "kept-one"
    assert "kept-one" in [x.name for x in store.list_sessions()]
    with pytest.raises(SessionError, match="no session named 'nope'"):
        Session.load("nope")


async def test_a_propose_session_runs_each_turn_on_its_snapshot(scripted, git_repo: Path) -> None:
    api = scripted([ToolCall("Bash", {"command": "sed -i s/hello/turn-one/ app.py"}),
                    Reply("Proposed turn one."),
                    ToolCall("Bash", {"command": "cat app.py && echo two > two.txt"}),
                    Reply("Proposed turn two.")])
    s = session("review", workspace=git_repo, tools=["Bash"], apply="propose")
    one = [e async for e in s.stream("first change")]
    two = [e async for e in s.stream("second change")]
    cwd_one = next(e for e in one if isinstance(e, Init)).cwd
    assert next(e for e in two if isinstance(e, Init)).cwd == cwd_one
    assert "turn-one" in next(e for e in two if isinstance(e, ToolResult)).output
    changes = next(e for e in two if isinstance(e, Changes))
    # nothing was applied, so the proposal is both turns, against the user's files
    assert {c.path for c in changes.files} == {"app.py", "two.txt"}
    assert (git_repo / "app.py").read_text() == "GREETING = 'hello'\n"
    assert saw(api.agent_requests()[-1].texts(), "Proposed turn one.")
    state = store.load("review")
    assert state is not None and state.snapshot == changes.base
    assert store.remove("review")
    assert not await anyio.Path(cwd_one).exists()


def cli(cwd: Path, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([*CHANNELCODER, *args], cwd=cwd, env=dict(os.environ),
                          capture_output=True, text=True, timeout=120)


def test_cli_session_flag_and_sessions_command(scripted, git_repo: Path) -> None:
    api = scripted([Reply("First answer."), Reply("Second answer.")])
    assert cli(git_repo, "run", "--session", "cli-s", "-t", "Read", "first").returncode == 0
    proc = cli(git_repo, "run", "--session", "cli-s", "second")
    assert proc.returncode == 0 and proc.stdout.strip() == "Second answer."
    assert saw(api.agent_requests()[-1].texts(), "first", "First answer.", "second")
    assert api.agent_requests()[-1].tools == ["Read"]
    listed = cli(git_repo, "sessions", "ls")
    assert listed.returncode == 0 and "cli-s" in listed.stdout and "2 turn(s)" in listed.stdout
    shown = cli(git_repo, "sessions", "show", "cli-s")
    assert "Second answer." in shown.stdout and '"tools": ["Read"]' in shown.stdout
    raw = json.loads(cli(git_repo, "sessions", "show", "cli-s", "--json").stdout)
    assert raw["currentSessionId"] and len(raw["messages"]) == 4
    elsewhere = cli(git_repo.parent, "run", "--session", "cli-s", "third")
    assert elsewhere.returncode == 1 and "belongs to the workspace" in elsewhere.stderr
    assert cli(git_repo, "sessions", "rm", "cli-s").returncode == 0
    gone = cli(git_repo, "sessions", "rm", "cli-s")
    assert gone.returncode == 1 and "no session named 'cli-s'" in gone.stderr
    bad = cli(git_repo, "run", "--session", "../x", "hi")
    assert bad.returncode == 2 and "invalid session name" in bad.stderr


def test_two_cli_processes_on_one_session_take_turns(scripted, git_repo: Path) -> None:
    api = scripted([Turn([Reply("answer one")], delay=0.5, chunks=2),
                    Turn([Reply("answer two")], delay=0.5, chunks=2)])
    procs = [subprocess.Popen([*CHANNELCODER, "run", "--session", "busy", f"question {n}"],
                              cwd=git_repo, env=dict(os.environ), stdout=subprocess.PIPE,
                              stderr=subprocess.PIPE, text=True) for n in (1, 2)]
    outputs = [p.communicate(timeout=120) for p in procs]
    assert [p.returncode for p in procs] == [0, 0], outputs
    assert sorted(o[0].strip() for o in outputs) == ["answer one", "answer two"]
    # the second turn resumed the first: its request held the first exchange
    assert sorted(r.turn for r in api.agent_requests()) == [0, 1]
    state = store.load("busy")
    assert state is not None and state.metadata["turns"] == 2
    assert [m["content"] for m in state.messages if m["role"] == "assistant"] == [
        "answer one", "answer two"]


def test_prompt_file_with_data_through_the_cli(scripted, git_repo: Path) -> None:
    api = scripted([Reply("ok")])
    (git_repo / "review.md").write_text(
        "---\ntitle: Review\nallowedTools: [Read]\ninput:\n  file: string\n"
        "  strict?: boolean\n---\nReview {file}{strict ? ' strictly' : ''}.\n")
    proc = subprocess.run([*CHANNELCODER, "run", "review.md", "-d", "file=app.py",
                           "--data-stdin"], cwd=git_repo, env=dict(os.environ),
                          input='{"strict": true}', capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr
    request = api.agent_requests()[-1]
    assert request.last_user_text().endswith("Review app.py strictly.")
    assert request.tools == ["Read"]
    missing = cli(git_repo, "run", "review.md")
    assert missing.returncode == 2 and "missing required input 'file'" in missing.stderr
    assert "-d file=VALUE" in missing.stderr and "Traceback" not in missing.stderr


async def test_leaving_the_stream_early_stops_claude(scripted, git_repo: Path) -> None:
    from tests.claude.test_native_jobs import wait_gone

    marker = f"leave-early-{os.getpid()}-{time.time_ns()}"
    scripted([Turn([Reply("word " * 40)], chunks=40, delay=0.2)])
    async for event in stream(marker, workspace=git_repo):
        if isinstance(event, TextDelta):
            break
    await wait_gone(marker)
