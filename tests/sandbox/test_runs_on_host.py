"""Files the host runs later, edited by a sandboxed job in place: listed, never silent."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from channelcoder import claude
from channelcoder.claude.events import HostRunChange
from channelcoder.testing.fake_anthropic import Reply, ToolCall, Turn
from tests.conftest import git
from tests.plugins.docker import docker_options

pytestmark = [pytest.mark.docker, pytest.mark.usefixtures("claude_bin", "no_leaked_containers")]


def edits() -> list[Any]:
    """The model reads the Makefile, then writes a husky hook, a make target and a plain file."""
    return [
        ToolCall("Read", {"file_path": "/workspace/Makefile"}),
        Turn([ToolCall("Write", {"file_path": "/workspace/.husky/pre-commit",
                                 "content": "#!/bin/sh\nmake lint\n"}),
              ToolCall("Write", {"file_path": "/workspace/Makefile",
                                 "content": "all:\n\techo hi\nlint:\n\truff .\n"}),
              ToolCall("Write", {"file_path": "/workspace/x.py", "content": "X = 1\n"})]),
        Reply("Added a lint hook."),
    ]


@pytest.fixture
def repo(git_repo: Path) -> Path:
    (git_repo / "Makefile").write_text("all:\n\techo hi\n")
    git(git_repo, "add", "Makefile")
    git(git_repo, "commit", "-q", "-m", "make")
    return git_repo


async def test_the_api_result_lists_them(scripted: Any, sandbox_image: str, repo: Path) -> None:
    scripted(edits())
    result = await claude("add a lint hook", workspace=repo, docker=docker_options(sandbox_image))
    assert result.ok, result
    assert result.runs_on_host == (HostRunChange(".husky/pre-commit", "husky git hook"),
                                   HostRunChange("Makefile", "runs on `make`"))
    assert result.to_json()["runsOnHost"][0] == {"path": ".husky/pre-commit",
                                                 "reason": "husky git hook"}


def test_the_cli_footer_lists_them(scripted: Any, sandbox_image: str, repo: Path) -> None:
    scripted(edits())
    done = subprocess.run([sys.executable, "-m", "channelcoder", "run", "--docker",
                           "--docker-image", sandbox_image, "-p",
                           "add a lint hook"], cwd=repo, capture_output=True, text=True,
                          timeout=120)
    assert done.returncode == 0, done.stderr
    assert ("runs on your machine: .husky/pre-commit (husky git hook), Makefile (runs on "
            "`make`) — review before you run it") in done.stderr
    assert "x.py" not in done.stderr.split("runs on your machine")[1]
    assert (repo / ".husky" / "pre-commit").read_text() == "#!/bin/sh\nmake lint\n"
