"""Sessions in the Docker sandbox: real engine, the project's image, the real CLI inside."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from channelcoder import Result, Session, session
from channelcoder import sessions as store
from channelcoder.claude.events import Changes, Init, ToolResult
from channelcoder.sandbox.container.claude_config import config_dir_for
from channelcoder.session_cleanup import remove_session
from channelcoder.testing.fake_anthropic import Reply, ToolCall
from tests.conftest import git
from tests.plugins.docker import docker_options

pytestmark = [pytest.mark.docker, pytest.mark.usefixtures("no_leaked_containers")]


def texts(api: Any) -> str:
    return "\n".join(api.agent_requests()[-1].texts())


async def test_a_two_turn_session_in_docker_resumes_in_a_new_container(
        scripted: Any, sandbox_image: str, git_repo: Path) -> None:
    api = scripted([ToolCall("Bash", {"command": "echo first > first.txt && pwd"}),
                    Reply("Remember: TANGERINE."),
                    ToolCall("Bash", {"command": "cat first.txt"}),
                    Reply("It was TANGERINE.")])
    s = session("docker-two", workspace=git_repo, docker=docker_options(sandbox_image))
    one = [e async for e in s.stream("first turn")]
    assert isinstance(one[-1], Result) and one[-1].ok, one[-1]
    assert next(e for e in one if isinstance(e, Init)).cwd == "/workspace"
    # a later process continues it by name, without repeating the Docker options
    again = Session.load("docker-two")
    two = [e async for e in again.stream("which fruit?")]
    assert isinstance(two[-1], Result) and two[-1].ok, two[-1]
    assert next(e for e in two if isinstance(e, Init)).cwd == "/workspace"
    assert "first" in next(e for e in two if isinstance(e, ToolResult)).output
    assert "first turn" in texts(api) and "Remember: TANGERINE." in texts(api)
    state = store.load("docker-two")
    assert state is not None and state.metadata["docker"] is True
    assert state.options["docker"]["image"] == sandbox_image
    assert state.current_session_id == two[-1].session_id  # type: ignore[union-attr]
    assert (git_repo / "first.txt").read_text() == "first\n"
    transcripts = config_dir_for(session="docker-two", workspace=git_repo, job_id="", resume=None)
    assert list((transcripts / "projects").glob(f"*/{state.current_session_id}.jsonl"))
    assert remove_session("docker-two") and not transcripts.exists()


async def test_a_propose_session_in_docker_works_on_its_snapshot(
        scripted: Any, sandbox_image: str, git_repo: Path) -> None:
    (git_repo / "app.py").write_text("GREETING = 'uncommitted'\n")
    api = scripted([
        ToolCall("Bash", {"command": "git status --short && cat app.py && "
                                     "sed -i s/uncommitted/proposed/ app.py"}),
        Reply("Proposed one."),
        ToolCall("Bash", {"command": "cat app.py && git -c user.email=c@example.com -c "
                                     "user.name=c commit -qam inside && echo committed; "
                                     f"rm -rf {git_repo}/.git/objects/* 2>&1 | head -1"}),
        Reply("Proposed two."),
    ])
    s = session("docker-propose", workspace=git_repo, apply="propose",
                docker=docker_options(sandbox_image))
    one = [e async for e in s.stream("first", buffers={"notes.txt": "unsaved note\n"})]
    assert isinstance(one[-1], Result) and one[-1].ok, one[-1]
    first_output = next(e for e in one if isinstance(e, ToolResult)).output
    # git works inside the container on the snapshot (its object store is mounted)
    assert " M app.py" in first_output and "?? notes.txt" in first_output
    assert "GREETING = 'uncommitted'" in first_output
    changes = next(e for e in one if isinstance(e, Changes))
    assert [(c.path, c.new_text) for c in changes.files] == [("app.py", "GREETING = 'proposed'\n")]
    two = [e async for e in s.stream("second")]
    assert isinstance(two[-1], Result) and two[-1].ok, two[-1]
    second_output = next(e for e in two if isinstance(e, ToolResult)).output
    assert "GREETING = 'proposed'" in second_output and "committed" in second_output
    # the user's object store is mounted read-only: the job cannot damage the repository
    assert "Read-only file system" in second_output
    assert git(git_repo, "fsck", "--no-progress", "--connectivity-only") == ""
    assert git(git_repo, "log", "--format=%s") == "initial\n"
    assert "Proposed one." in texts(api)
    assert (git_repo / "app.py").read_text() == "GREETING = 'uncommitted'\n"
    assert not (git_repo / "notes.txt").exists()
    assert remove_session("docker-propose")
