"""End to end, natively (real CLI on the host, scripted model): propose mode and worktree jobs."""

from __future__ import annotations

import os
import shlex
import subprocess
import sys
from pathlib import Path

import pytest

from channelcoder.claude.events import Changes, Error, Init, Result, Status, ToolResult
from channelcoder.config import RunOptions, WorktreeOptions
from channelcoder.jobs import Job
from channelcoder.request import Request
from channelcoder.testing.fake_anthropic import Reply, ToolCall
from channelcoder.workspace.snapshot import discard, open_snapshot
from tests.conftest import git
from tests.workspace.test_snapshot import fingerprint

pytestmark = pytest.mark.usefixtures("claude_bin")
CHANNELCODER = [sys.executable, "-m", "channelcoder"]


async def collect(job: Job) -> list[object]:
    return [event async for event in job.events()]


async def test_propose_job_sees_unsaved_work_and_returns_changes(scripted, git_repo: Path) -> None:
    (git_repo / "lib.py").write_text("VALUE = 'on disk'\n")
    git(git_repo, "add", "lib.py")
    git(git_repo, "commit", "-qm", "lib")
    (git_repo / "app.py").write_text("GREETING = 'uncommitted'\n")
    before = fingerprint(git_repo)
    scripted([
        ToolCall("Bash", {"command": "cat app.py lib.py; git status --short; "
                                     "sed -i s/uncommitted/proposed/ app.py; "
                                     "printf 'fresh\\n' > added.txt; rm lib.py"}),
        Reply("Proposed."),
    ])
    options = RunOptions(tools=("Bash",), apply="propose")
    request = Request("improve it", options, git_repo, buffers={"lib.py": "VALUE = 'in buffer'\n"})
    events = await collect(Job(request))
    init = next(e for e in events if isinstance(e, Init))
    assert Path(init.cwd) != git_repo and "snapshots" in init.cwd
    output = next(e for e in events if isinstance(e, ToolResult)).output
    assert "GREETING = 'uncommitted'" in output and "VALUE = 'in buffer'" in output
    assert " M app.py" in output and " M lib.py" in output
    kinds = [type(e).__name__ for e in events]
    assert kinds.index("Changes") == len(kinds) - 2 and kinds[-1] == "Result"
    changes = events[-2]
    assert isinstance(changes, Changes) and isinstance(events[-1], Result) and events[-1].ok
    by_path = {c.path: c for c in changes.files}
    assert by_path["app.py"].old_text == "GREETING = 'uncommitted'\n"
    assert by_path["app.py"].new_text == "GREETING = 'proposed'\n"
    assert by_path["added.txt"].status == "added" and by_path["added.txt"].new_text == "fresh\n"
    assert by_path["lib.py"].status == "deleted"
    assert by_path["lib.py"].old_text == "VALUE = 'in buffer'\n"
    assert "-GREETING = 'uncommitted'\n+GREETING = 'proposed'" in changes.diff
    assert any(isinstance(e, Status) and e.phase == "preparing-snapshot" for e in events)
    assert fingerprint(git_repo) == before
    snap = open_snapshot(changes.base)
    assert snap is not None and snap.base_text("lib.py") == "VALUE = 'in buffer'\n"
    assert discard(changes.base)


async def test_propose_job_without_edits_leaves_no_snapshot(scripted, git_repo: Path) -> None:
    scripted([Reply("Nothing to change.")])
    events = await collect(Job(Request("look", RunOptions(apply="propose"), git_repo)))
    changes = next(e for e in events if isinstance(e, Changes))
    assert changes.files == () and open_snapshot(changes.base) is None


async def test_worktree_job_edits_the_worktree_not_the_checkout(scripted, git_repo: Path) -> None:
    scripted([ToolCall("Bash", {"command": "git status --short --branch; "
                                           "sed -i s/hello/worktree/ app.py"}),
              Reply("Edited.")])
    options = RunOptions(tools=("Bash",), worktree=WorktreeOptions(branch="experiment/risky"))
    events = await collect(Job(Request("edit", options, git_repo)))
    worktree = git_repo.parent / "repo-experiment-risky"
    assert isinstance(events[-1], Result) and events[-1].ok
    assert next(e for e in events if isinstance(e, Init)).cwd == str(worktree)
    assert "## experiment/risky" in next(e for e in events if isinstance(e, ToolResult)).output
    assert (worktree / "app.py").read_text() == "GREETING = 'worktree'\n"
    assert (git_repo / "app.py").read_text() == "GREETING = 'hello'\n"
    assert git(git_repo, "status", "--porcelain") == ""
    # the second job of the same branch reuses it (and sees the first job's edit)
    scripted([ToolCall("Bash", {"command": "cat app.py"}), Reply("Seen.")])
    again = await collect(Job(Request("look again", options, git_repo)))
    assert next(e for e in again if isinstance(e, Init)).cwd == str(worktree)
    assert "'worktree'" in next(e for e in again if isinstance(e, ToolResult)).output


async def test_keep_false_keeps_a_dirty_worktree_and_says_so(scripted, git_repo: Path) -> None:
    scripted([ToolCall("Bash", {"command": "echo new > new.txt"}), Reply("Made a file.")])
    options = RunOptions(tools=("Bash",), worktree=WorktreeOptions(branch="tmp", keep=False))
    events = await collect(Job(Request("make a file", options, git_repo)))
    tree = git_repo.parent / "repo-tmp"
    notices = [e.message for e in events if isinstance(e, Status) and "worktree" in e.message]
    assert any("kept the worktree" in n and "uncommitted" in n for n in notices)
    assert (tree / "new.txt").read_text() == "new\n"
    scripted([ToolCall("Bash", {"command": "git add -A && git commit -qm done"}), Reply("ok")])
    events = await collect(Job(Request("commit it", options, git_repo)))
    assert any(isinstance(e, Status) and "removed the worktree" in e.message for e in events)
    assert not tree.exists() and "new.txt" in git(git_repo, "show", "--stat", "tmp")


async def test_worktree_of_a_non_git_workspace_is_a_clear_error(scripted, tmp_path: Path) -> None:
    scripted([Reply("never")])
    options = RunOptions(worktree=WorktreeOptions(branch="x"))
    events = await collect(Job(Request("hi", options, tmp_path)))
    error = events[-1]
    assert isinstance(error, Error) and "needs a git repository" in error.message


def run_cli(cwd: Path, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([*CHANNELCODER, "run", *args], cwd=cwd, env=dict(os.environ),
                          capture_output=True, text=True, timeout=120)


def test_cli_propose_prints_the_diff_and_how_to_apply_it(scripted, git_repo: Path) -> None:
    scripted([ToolCall("Bash", {"command": "sed -i s/hello/bonjour/ app.py"}), Reply("Done.")])
    before = fingerprint(git_repo)
    proc = run_cli(git_repo, "-t", "Bash", "--apply", "propose", "translate")
    assert proc.returncode == 0, proc.stderr
    assert "modified app.py" in proc.stderr
    assert "-GREETING = 'hello'" in proc.stderr and "+GREETING = 'bonjour'" in proc.stderr
    assert fingerprint(git_repo) == before
    hint = proc.stderr.split("to apply: ", 1)[1].splitlines()[0]
    subprocess.run(shlex.split(hint), check=True)
    assert (git_repo / "app.py").read_text() == "GREETING = 'bonjour'\n"


def test_cli_worktree_flags(scripted, git_repo: Path) -> None:
    scripted([ToolCall("Bash", {"command": "echo cli > cli.txt"}), Reply("ok")])
    proc = run_cli(git_repo, "-t", "Bash", "--worktree", "cli/branch", "--worktree-base", "HEAD",
                   "make a file")
    assert proc.returncode == 0, proc.stderr
    assert (git_repo.parent / "repo-cli-branch" / "cli.txt").read_text() == "cli\n"
    assert not (git_repo / "cli.txt").exists()
