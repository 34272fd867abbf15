"""Worktree + Docker: the edit lands in the worktree, git works inside, reuse, dirty refusal."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from channelcoder.claude.events import Init, Result, ToolResult
from channelcoder.config import build_options
from channelcoder.errors import WorkspaceError
from channelcoder.jobs import Job
from channelcoder.request import Request
from channelcoder.testing.fake_anthropic import Reply, ToolCall
from channelcoder.workspace.worktrees import remove_worktree
from tests.conftest import git
from tests.plugins.docker import docker_options

pytestmark = [pytest.mark.docker, pytest.mark.usefixtures("no_leaked_containers")]


async def run(prompt: str, workspace: Path, **options: Any) -> list[object]:
    job = Job(Request(prompt, build_options(options), workspace))
    return [event async for event in job.events()]


async def test_worktree_job_in_docker(scripted: Any, sandbox_image: str, git_repo: Path) -> None:
    docker = docker_options(sandbox_image)
    scripted([
        ToolCall("Read", {"file_path": "/workspace/app.py"}),
        ToolCall("Edit", {"file_path": "/workspace/app.py", "old_string": "'hello'",
                          "new_string": "'from the sandbox'"}),
        ToolCall("Bash", {"command": "git status --short --branch && git log --oneline -1"}),
        Reply("Edited in the worktree."),
    ])
    events = await run("edit", git_repo, docker=docker, worktree="experiment/risky")
    result = events[-1]
    assert isinstance(result, Result) and result.ok, result
    worktree = git_repo.parent / "repo-experiment-risky"
    assert next(e for e in events if isinstance(e, Init)).cwd == "/workspace"
    status = [e for e in events if isinstance(e, ToolResult)][-1].output
    assert "## experiment/risky" in status and " M app.py" in status and "initial" in status
    assert (worktree / "app.py").read_text() == "GREETING = 'from the sandbox'\n"
    assert (git_repo / "app.py").read_text() == "GREETING = 'hello'\n"
    assert git(git_repo, "status", "--porcelain") == ""
    # the second call reuses the worktree, and a commit made inside lands on the branch
    scripted([ToolCall("Bash", {"command": "cat app.py && git -c user.email=c@example.com "
                                           "-c user.name=c commit -qam sandboxed && echo ok"}),
              Reply("Committed.")])
    again = await run("commit it", git_repo, docker=docker, worktree="experiment/risky")
    assert isinstance(again[-1], Result) and again[-1].ok, again[-1]
    output = next(e for e in again if isinstance(e, ToolResult)).output
    assert "'from the sandbox'" in output and output.strip().endswith("ok")
    assert git(git_repo, "log", "--format=%s", "-1", "experiment/risky").strip() == "sandboxed"
    # a dirty worktree is not removed without force
    (worktree / "scratch.txt").write_text("uncommitted\n")
    with pytest.raises(WorkspaceError, match="uncommitted changes"):
        remove_worktree(git_repo, "experiment/risky")
    assert (worktree / "scratch.txt").exists()
