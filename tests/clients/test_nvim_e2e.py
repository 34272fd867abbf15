"""The Neovim plugin end to end, in headless Neovim 0.7.2 and 0.11.x: the real language server
runs the real Claude Code CLI against the scripted model, natively (settings docker = false) and
in the real sandbox (docker, network host so the container reaches the model on 127.0.0.1)."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from tests.clients.test_nvim_support import NvimRun, assert_passed, find_nvim, run_lua
from tests.conftest import git, processes_with

from channelcoder.testing.fake_anthropic import (
    Failure,
    FakeAnthropic,
    Reply,
    Scenario,
    ToolCall,
    Turn,
    TurnLike,
)

NATIVE = {"docker": False, "tools": ["Bash", "Read", "Edit", "Write"]}
SANDBOX: dict[str, Any] = {"docker": {}}  # the default network mode: the egress proxy

pytestmark = pytest.mark.usefixtures("claude_bin")


@pytest.fixture(params=["0.7", "0.11"], ids=lambda s: f"nvim-{s}")
def nvim(request: pytest.FixtureRequest) -> Path:
    return find_nvim(request.param)


@pytest.fixture(params=[
    "native",
    pytest.param("docker", marks=[pytest.mark.docker, pytest.mark.timeout(1200)]),
])
def mode(request: pytest.FixtureRequest) -> dict[str, Any]:
    """Settings for a native or a sandboxed run. A sandboxed run uses the session's sandbox
    image (tests/plugins/docker.py: built once, a cache hit here) and fails when a container it
    made outlives Neovim."""
    if request.param == "native":
        return {"settings": NATIVE, "env": {}}
    request.getfixturevalue("sandbox_image")
    request.getfixturevalue("no_leaked_containers")
    return {"settings": SANDBOX, "env": {}}


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
        mode: dict[str, Any] | None = None) -> NvimRun:
    mode = mode or {"settings": NATIVE, "env": {}}
    return run_lua(nvim, script, workspace, env={**api.env(), **mode["env"]},
                   settings=mode["settings"])


def test_fix_code_action_progress_transcript_and_accepted_proposal(
        nvim: Path, workspace: Path, model: Callable[[list[TurnLike]], FakeAnthropic],
        mode: dict[str, Any]) -> None:
    api = model([
        ToolCall("Bash", {"command": "sed -i \"s/'hello'/'hello, world'/\" app.py"}),
        Turn([Reply("Fixed the greeting.")], chunks=3),
    ])
    result = run(nvim, "test_e2e_fix.lua", workspace, api, mode)
    assert_passed(result, 5)
    assert (workspace / "app.py").read_text() == "GREETING = 'hello, world'\n"
    code_action, fix_command = (r.last_user_text() for r in api.agent_requests()
                                if r.turn == 0)
    assert "GREETING should say hello, world" in code_action
    assert "Fix this problem in app.py" in fix_command
    assert "GREETING should say hello, world" in fix_command
    assert git(workspace, "status", "--short") == " M app.py\n"


def test_claude_with_a_range_and_ask_with_a_selection(
        nvim: Path, workspace: Path, model: Callable[[list[TurnLike]], FakeAnthropic],
        mode: dict[str, Any]) -> None:
    api = model([Reply("These lines shout.")])
    result = run(nvim, "test_e2e_range.lua", workspace, api, mode)
    assert_passed(result, 4)
    run_prompt, ask_prompt = (r.last_user_text() for r in api.agent_requests()[:2])
    assert "Explain these lines" in run_prompt and "unsaved changes" in run_prompt
    assert "Selected lines 2-3:" in run_prompt
    assert "def shout(name):\n    return name.upper() + '!'" in run_prompt
    assert "print(shout" not in run_prompt.split("Selected lines")[1]
    selected = ask_prompt.split("Selected lines 2-2:")[1]
    assert "shout(name)" in selected and "def" not in selected
    assert (workspace / "app.py").read_text() == "GREETING = 'hello'\n", "an answer changes no file"


def test_cancel_mid_job_stops_claude(
        nvim: Path, workspace: Path, model: Callable[[list[TurnLike]], FakeAnthropic],
        mode: dict[str, Any]) -> None:
    api = model([Turn([Reply("too late")], first_delay=60)])
    result = run(nvim, "test_e2e_cancel.lua", workspace, api, mode)
    assert_passed(result, 2)
    assert len(api.agent_requests()) <= 1, "no turn after the cancel"
    assert not processes_with("cancel-marker-7f3a"), "claude still runs after the cancel"


def test_stale_proposal_refused_then_rebased(
        nvim: Path, workspace: Path, model: Callable[[list[TurnLike]], FakeAnthropic],
        mode: dict[str, Any]) -> None:
    api = model([
        Turn([ToolCall("Bash", {"command": "sed -i \"s/'hello'/'hello, world'/\" app.py"})],
             first_delay=2),
        Reply("Changed the greeting."),
    ])
    result = run(nvim, "test_e2e_stale.lua", workspace, api, mode)
    assert_passed(result, 3)


def test_reject_with_a_reason_continues_the_session(
        nvim: Path, workspace: Path, model: Callable[[list[TurnLike]], FakeAnthropic],
        mode: dict[str, Any]) -> None:
    api = model([
        ToolCall("Bash", {"command": "sed -i \"s/'hello'/'hello, world'/\" app.py"}),
        Reply("Changed the greeting."),
        # the follow-up turn works on the first turn's snapshot, where the greeting changed
        ToolCall("Bash", {"command": "sed -i \"s/'hello, world'/'hi'/\" app.py"}),
        Reply("Now it says hi."),
    ])
    result = run(nvim, "test_e2e_reject.lua", workspace, api, mode)
    assert_passed(result, 2)
    follow_up = api.agent_requests()[-1]
    assert "say 'hi' instead" in "\n".join(follow_up.texts()), "the reason reached the model"


def test_errors_reach_the_user_with_a_hint(
        nvim: Path, workspace: Path, model: Callable[[list[TurnLike]], FakeAnthropic]) -> None:
    api = model([Turn([Reply("unreachable")], failure=Failure(status=500, times=0))])
    result = run(nvim, "test_e2e_errors.lua", workspace, api)
    assert_passed(result, 3)


def test_checkhealth_reports_server_and_doctor(
        nvim: Path, workspace: Path, model: Callable[[list[TurnLike]], FakeAnthropic]) -> None:
    api = model([])
    result = run(nvim, "test_e2e_health.lua", workspace, api)
    assert_passed(result, 2)


def test_settings_problems_are_one_short_notice_and_listed_by_checkhealth(
        nvim: Path, workspace: Path, model: Callable[[list[TurnLike]], FakeAnthropic]) -> None:
    result = run(nvim, "test_e2e_settings.lua", workspace, model([]))
    assert_passed(result, 1)


def test_per_hunk_review_applies_exactly_the_accepted_hunks(
        nvim: Path, workspace: Path, model: Callable[[list[TurnLike]], FakeAnthropic]) -> None:
    api = model([
        ToolCall("Bash", {"command": "sed -i \"s/'hello'/'HELLO'/; s/'bye'/'BYE'/\" app.py"
                                     " && echo shouted > notes.txt"}),
        Reply("Shouted."),
    ])
    result = run(nvim, "test_e2e_hunks.lua", workspace, api)
    assert_passed(result, 2)
    assert (workspace / "app.py").read_text().splitlines()[::6] == ["GREETING = 'HELLO'",
                                                                     "FAREWELL = 'bye'"]
    assert (workspace / "notes.txt").read_text() == "shouted\n"


def test_trust_question_is_answered_through_vim_ui_select(
        nvim: Path, workspace: Path, model: Callable[[list[TurnLike]], FakeAnthropic]) -> None:
    from channelcoder.trust import is_trusted

    (workspace / ".channelcoder").mkdir()
    (workspace / ".channelcoder/config.toml").write_text('[docker]\nnetwork = "host"\n')
    assert not is_trusted(workspace)
    result = run(nvim, "test_e2e_trust.lua", workspace, model([]))
    assert_passed(result, 1)
    assert is_trusted(workspace), "the answer reached the server, which recorded it"


@pytest.mark.docker
@pytest.mark.timeout(1200)
@pytest.mark.usefixtures("no_leaked_containers")
def test_build_image_command_reports_the_image(
        nvim: Path, workspace: Path, model: Callable[[list[TurnLike]], FakeAnthropic],
        sandbox_image: str) -> None:
    result = run(nvim, "test_e2e_image.lua", workspace, model([]),
                 {"settings": SANDBOX, "env": {}})
    assert_passed(result, 1)
    assert any(sandbox_image in note["message"] for note in result.summary["notes"])


def test_review_context_navigation_side_by_side_and_a_conflict_resolved_by_editing(
        nvim: Path, workspace: Path, model: Callable[[list[TurnLike]], FakeAnthropic]) -> None:
    api = model([
        Turn([ToolCall("Bash", {"command": "sed -i 's/^a1$/A1/; s/^a6$/A6/; s/^a11$/A11/' app.py"})],
             first_delay=2),
        Reply("Shouted three lines."),
    ])
    result = run(nvim, "test_e2e_review.lua", workspace, api)
    assert_passed(result, 5)
    assert (workspace / "app.py").read_text().splitlines()[:6] == [
        "A1", "a2", "a3", "a4", "a5", "A6 # mine"]


def test_one_transcript_window_and_one_clock(
        nvim: Path, workspace: Path, model: Callable[[list[TurnLike]], FakeAnthropic]) -> None:
    api = model([Turn([Reply(f"Answer {n}.")], first_delay=1.2) for n in range(3)])
    result = run(nvim, "test_e2e_transcript.lua", workspace, api)
    assert_passed(result, 3)


@pytest.mark.docker
@pytest.mark.usefixtures("sandbox_image", "no_leaked_containers")
def test_the_review_flags_files_that_run_on_your_machine(
        nvim: Path, workspace: Path, model: Callable[[list[TurnLike]], FakeAnthropic]) -> None:
    (workspace / "Makefile").write_text("all:\n\techo hi\n")
    (workspace / ".husky").mkdir()
    (workspace / ".husky" / "pre-commit").write_text("#!/bin/sh\n")
    git(workspace, "add", "Makefile", ".husky")
    git(workspace, "commit", "-q", "-m", "make")
    api = model([
        ToolCall("Bash", {"command": "echo 'make lint' >> .husky/pre-commit && "
                                     "printf 'lint:\\n\\truff .\\n' >> Makefile && "
                                     "echo \"GREETING = 'hi'\" > app.py"}),
        Reply("Added a hook."),
    ])
    result = run(nvim, "test_e2e_hostrun.lua", workspace, api, {"settings": SANDBOX, "env": {}})
    assert_passed(result, 1)


@pytest.mark.docker
@pytest.mark.timeout(600)
@pytest.mark.usefixtures("sandbox_image", "no_leaked_containers")
def test_checkhealth_shows_the_running_standby(
        nvim: Path, workspace: Path, model: Callable[[list[TurnLike]], FakeAnthropic]) -> None:
    result = run_lua(nvim, "test_e2e_health_standby.lua", workspace, env=model([]).env(),
                     settings=SANDBOX, timeout=300)
    assert_passed(result, 1)


@pytest.mark.docker
@pytest.mark.timeout(900)
@pytest.mark.usefixtures("sandbox_image", "no_leaked_containers")
def test_a_server_killed_mid_job_is_survived(
        nvim: Path, workspace: Path, model: Callable[[list[TurnLike]], FakeAnthropic]) -> None:
    api = model([
        # the second job (slow.flag is in its snapshot) is still in this tool when it is killed
        ToolCall("Bash", {"command": "if [ -e slow.flag ]; then sleep 300; fi; "
                                     "sed -i \"s/'hello'/'hi'/\" app.py"}),
        Reply("Changed the greeting."),
    ])
    result = run_lua(nvim, "test_e2e_crash.lua", workspace, env=api.env(),
                     settings=SANDBOX, timeout=600)
    assert_passed(result, 4)
    assert (workspace / "app.py").read_text() == "GREETING = 'hi'\n", "the re-offered proposal"
