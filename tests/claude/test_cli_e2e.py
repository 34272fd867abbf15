"""`channelcoder run` end to end: the console script, the real CLI, the scripted model."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path

import pytest

from channelcoder.testing.fake_anthropic import Failure, Reply, ToolCall, Turn

pytestmark = pytest.mark.usefixtures("claude_bin")
CHANNELCODER = [sys.executable, "-m", "channelcoder"]


def run(cwd: Path, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([*CHANNELCODER, "run", *args], cwd=cwd, env=dict(os.environ),
                          capture_output=True, text=True, timeout=120)


def test_streams_text_tool_lines_and_a_footer(scripted, git_repo: Path) -> None:
    scripted([ToolCall("Bash", {"command": "echo 42"}), Turn([Reply("The answer is 42.")], chunks=4)])
    proc = run(git_repo, "-t", "Bash", "what is the answer?")
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.strip() == "The answer is 42."
    assert "→ Bash: echo 42" in proc.stderr
    footer = proc.stderr.strip().splitlines()[-1]
    assert footer.startswith("── ") and "2 turns" in footer and "session " in footer


def test_json_prints_one_event_per_line(scripted, git_repo: Path) -> None:
    scripted([Reply("hi")])
    proc = run(git_repo, "--json", "hello")
    events = [json.loads(line) for line in proc.stdout.splitlines()]
    assert proc.returncode == 0
    assert [e["type"] for e in events if e["type"] in ("init", "result")] == ["init", "result"]
    assert events[-1]["ok"] is True and events[-1]["text"] == "hi"


def test_denied_tools_are_listed_with_the_flag_that_allows_them(scripted, git_repo: Path) -> None:
    scripted([ToolCall("Bash", {"command": "touch x.txt"}), Reply("Could not.")])
    proc = run(git_repo, "--permission-mode", "default", "make x")
    assert proc.returncode == 0
    assert "denied: Bash(touch x.txt)" in proc.stderr and "--tools 'Bash(touch:*)'" in proc.stderr
    assert not (git_repo / "x.txt").exists()


def test_failed_run_exits_1_with_the_error(scripted, git_repo: Path) -> None:
    scripted([Turn([Reply("x")], failure=Failure(401, 0))])
    proc = run(git_repo, "hi")
    assert proc.returncode == 1
    assert "error: authentication failed" in proc.stderr and "hint:" in proc.stderr


def test_api_retries_are_said_on_stderr_as_they_happen(scripted, git_repo: Path) -> None:
    scripted([Turn([Reply("fine now")], failure=Failure(529, 2, "Overloaded"))])
    proc = run(git_repo, "hi")
    assert proc.returncode == 0 and "fine now" in proc.stdout
    retries = [line for line in proc.stderr.splitlines() if "retry " in line]
    assert len(retries) == 2 and "529 (overloaded); retry 1 of 10 in " in retries[0]


def test_a_bad_key_exits_at_once_with_the_credentials_hint(scripted, git_repo: Path) -> None:
    scripted([Turn([Reply("x")], failure=Failure(401, 0, "invalid x-api-key",
                                                 retry_header=False))])
    started = time.monotonic()
    proc = run(git_repo, "hi")
    assert time.monotonic() - started < 10
    assert proc.returncode == 1
    assert "error: the API refused the credentials (401" in proc.stderr
    assert "hint: set ANTHROPIC_API_KEY" in proc.stderr


def test_prompt_file_argument_and_verbose_command_line(scripted, git_repo: Path) -> None:
    api = scripted([Reply("ok")])
    (git_repo / "task.md").write_text("Review the code please.\n")
    proc = run(git_repo, "--verbose", "task.md")
    assert proc.returncode == 0, proc.stderr
    assert api.agent_requests()[0].last_user_text().endswith("Review the code please.")
    assert "claude -p --output-format stream-json --verbose" in proc.stderr
    assert "scripted-model-not-a-real-key" not in proc.stderr + proc.stdout
    inline = run(git_repo, "-p", "task.md")
    assert inline.returncode == 0
    assert api.agent_requests()[-1].last_user_text().endswith("task.md")
