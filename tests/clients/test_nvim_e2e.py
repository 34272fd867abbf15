"""The Neovim plugin end to end, in headless Neovim 0.7.2 and 0.11.x: the real language server
runs the real Claude Code CLI against the scripted model, natively (settings docker = false)."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from tests.clients.test_nvim_support import NvimRun, assert_passed, find_nvim, run_lua
from tests.conftest import git

from channelcoder.testing.fake_anthropic import FakeAnthropic, Reply, Scenario, ToolCall, Turn, TurnLike

NATIVE = {"docker": False, "tools": ["Bash", "Read", "Edit", "Write"]}

pytestmark = pytest.mark.usefixtures("claude_bin")


@pytest.fixture(params=["0.7", "0.11"], ids=lambda s: f"nvim-{s}")
def nvim(request: pytest.FixtureRequest) -> Path:
    return find_nvim(request.param)


@pytest.fixture
def model() -> Iterator[Callable[[list[TurnLike]], FakeAnthropic]]:
    """Start the scripted model; its env goes to Neovim and so to the server it starts."""
    started: list[FakeAnthropic] = []

    def start(turns: list[TurnLike]) -> FakeAnthropic:
        api = FakeAnthropic(Scenario(turns)).start()
        started.append(api)
        return api

    yield start
    for api in started:
        api.stop()


@pytest.fixture
def workspace(git_repo: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """The git repository of tests/conftest.py (app.py) with a private state dir."""
    monkeypatch.setenv("CHANNELCODER_STATE_DIR", str(tmp_path / "state"))
    return git_repo


def run(nvim: Path, script: str, workspace: Path, api: FakeAnthropic,
        settings: dict[str, Any] | None = None) -> NvimRun:
    return run_lua(nvim, script, workspace, env=api.env(), settings=settings or NATIVE)


def test_fix_code_action_progress_transcript_and_accepted_proposal(
        nvim: Path, workspace: Path, model: Callable[[list[TurnLike]], FakeAnthropic]) -> None:
    api = model([
        ToolCall("Bash", {"command": "sed -i \"s/'hello'/'hello, world'/\" app.py"}),
        Turn([Reply("Fixed the greeting.")], chunks=3),
    ])
    result = run(nvim, "test_e2e_fix.lua", workspace, api)
    assert_passed(result, 4)
    assert (workspace / "app.py").read_text() == "GREETING = 'hello, world'\n"
    assert "GREETING should say hello, world" in api.agent_requests()[0].last_user_text()
    assert git(workspace, "status", "--short") == " M app.py\n"
