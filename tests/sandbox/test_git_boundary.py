"""The git boundary end to end: nothing a job writes into a git dir makes the host run code.

Real engine, the real Claude CLI in the sandbox, real git on both sides, the scripted model.
Each job plants one thing a hostile job would (a hook, `core.hooksPath`, `core.fsmonitor`, a
filter driver, `include.path`, `commondir`, a renamed-away `.git` with a new one, a control file
replaced by a link), in the git dir git reports (`rev-parse --git-dir`, `--git-common-dir`) — in
place, in a worktree, in a named session's second turn in its warm sandbox, and in a submodule.
Every planted command touches a marker file outside the workspace, at its host path: without the
boundary each of them runs there. Then the user runs git on the host — status, diff, commit,
checkout — which still works, no marker appears, and a security event names the path.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import anyio
import pytest

from channelcoder import session, stream
from channelcoder.claude.events import AnyEvent, Result, SecurityEvent, ToolResult
from channelcoder.session_cleanup import remove_session
from channelcoder.testing.fake_anthropic import Reply, ToolCall
from tests.conftest import git, make_repo
from tests.plugins.docker import docker_options

pytestmark = [pytest.mark.docker, pytest.mark.usefixtures("claude_bin", "no_leaked_containers")]
GUARD = 120.0


def plant(kind: str, marker: Path, top: Path) -> tuple[str, str]:
    """The job's shell command for one kind of plant, and the path its security event names.

    `top` is the work tree as the host sees it: what a plant points git at must exist on the
    host, where it would take effect, not only at the sandbox's /workspace. Hooks and the config
    go where git reads them from — the common dir, which in a worktree is not the git dir.
    """
    run = f"touch {marker}"
    hook = f"printf '#!/bin/sh\\n{run}\\n'"
    evil_config = f"printf '[core]\\n\\tfsmonitor = \"{run}; false\"\\n'"
    g = 'G=$(git rev-parse --git-dir) && C=$(git rev-parse --git-common-dir) && '
    if kind == "hook":
        return (g + f'mkdir -p "$C/hooks" && for h in pre-commit post-commit post-checkout; do '
                f'{hook} > "$C/hooks/$h"; chmod +x "$C/hooks/$h"; done', "hooks/pre-commit")
    if kind == "hooks-path":
        return (f"mkdir -p .hooks && for h in pre-commit post-checkout; do {hook} > .hooks/$h; "
                "chmod +x .hooks/$h; done && git config core.hooksPath .hooks", "config")
    if kind == "fsmonitor":
        return f'git config core.fsmonitor "{run}; false"', "config"
    if kind == "filter":
        return ("echo '* filter=x' > .gitattributes && "
                f'git config filter.x.clean "{run}; cat" && '
                f'git config filter.x.smudge "{run}; cat"', "config")
    if kind == "worktree-config":
        return ("git config extensions.worktreeConfig true && "
                f'git config --worktree core.fsmonitor "{run}; false"', "config.worktree")
    if kind == "include":
        return f"{evil_config} > evil.cfg && git config include.path {top}/evil.cfg", "config"
    if kind == "commondir":  # a working common dir (refs, objects) whose config runs a command
        return (g + f'cp -R "$C" evil-common && {evil_config} >> evil-common/config && '
                f'echo "{top}/evil-common" > "$G/commondir"', "commondir")
    if kind == "renamed":
        return (g + 'mv "$G" "$G.away" 2>/dev/null; mv .git .git-away 2>/dev/null; '
                'find "$G" -mindepth 1 -delete 2>/dev/null; '
                'git init -q . 2>/dev/null || git init -q --bare "$G"; '
                'C=$(git rev-parse --git-common-dir 2>/dev/null || echo "$G") && '
                'mkdir -p "$C/hooks" && '
                f'{hook} > "$C/hooks/pre-commit" && chmod +x "$C/hooks/pre-commit"',
                "hooks/pre-commit")
    if kind == "link":
        return (g + f'{evil_config} > evil.cfg && ln -sf "{top}/evil.cfg" "$C/config"',
                "config")
    raise AssertionError(kind)


PLANTS = ["hook", "hooks-path", "fsmonitor", "filter", "worktree-config", "include", "commondir",
          "renamed", "link"]


def host_git(repo: Path, home: Path) -> list[str]:
    """What a user does next on the host, with a clean environment (no global config). Returns
    the commands that failed: each must still work in the repository the job left behind."""
    env = {"HOME": str(home), "PATH": os.environ["PATH"], "GIT_CONFIG_NOSYSTEM": "1",
           "GIT_AUTHOR_NAME": "User", "GIT_AUTHOR_EMAIL": "user@example.com",
           "GIT_COMMITTER_NAME": "User", "GIT_COMMITTER_EMAIL": "user@example.com"}
    failed: list[str] = []
    for argv in (["status"], ["diff"], ["add", "-A"], ["commit", "-q", "--allow-empty", "-m", "u"],
                 ["checkout", "-q", "-b", f"after-the-job-in-{repo.name}"], ["checkout", "-q", "-"]):
        done = subprocess.run(["git", *argv], cwd=repo, env=env, capture_output=True, text=True,
                              timeout=60)
        if done.returncode != 0:
            failed.append(f"git {' '.join(argv)}: {done.stderr.strip()}")
    return failed


async def run_job(workspace: Path, image: str, **options: Any) -> list[AnyEvent]:
    with anyio.fail_after(GUARD):
        events = [e async for e in stream("do it", workspace=workspace,
                                          docker=docker_options(image), **options)]
    assert isinstance(events[-1], Result), events[-1]
    return events


def security(events: list[AnyEvent]) -> list[str]:
    return [f"{e.path}: {e.change}" for e in events if isinstance(e, SecurityEvent)]


@pytest.fixture
def home(tmp_path: Path) -> Path:
    path = tmp_path / "home"
    path.mkdir()
    return path


@pytest.mark.parametrize("kind", PLANTS)
async def test_in_place(kind: str, scripted: Any, sandbox_image: str, git_repo: Path,
                        tmp_path: Path, home: Path) -> None:
    marker = tmp_path / "ran-on-the-host"
    command, named = plant(kind, marker, git_repo)
    scripted([ToolCall("Bash", {"command": command}), Reply("planted")])
    events = await run_job(git_repo, sandbox_image)
    broken = host_git(git_repo, home)
    assert not marker.exists()
    assert broken == []
    assert any(f".git/{named}" in line for line in security(events)), security(events)


@pytest.mark.parametrize("kind", PLANTS)
async def test_in_a_worktree(kind: str, scripted: Any, sandbox_image: str, git_repo: Path,
                             tmp_path: Path, home: Path) -> None:
    marker = tmp_path / "ran-on-the-host"
    tree = git_repo.parent / f"{git_repo.name}-side"
    command, named = plant(kind, marker, tree)
    scripted([ToolCall("Bash", {"command": command}), Reply("planted")])
    events = await run_job(git_repo, sandbox_image, worktree="side")
    broken = host_git(tree, home) + host_git(git_repo, home)
    assert not marker.exists()
    assert broken == []
    assert (tree / ".git").read_text().startswith("gitdir: ")
    assert any(f".git/{named}" in line for line in security(events)), security(events)


@pytest.mark.parametrize("kind", PLANTS)
async def test_in_a_warm_sessions_second_turn(kind: str, scripted: Any, sandbox_image: str,
                                              git_repo: Path, tmp_path: Path,
                                              home: Path) -> None:
    marker = tmp_path / "ran-on-the-host"
    command, named = plant(kind, marker, git_repo)
    warm = "/tmp/the-first-turn-was-here"  # the plant runs only in the first turn's sandbox
    scripted([ToolCall("Bash", {"command": f"git status --short && touch {warm}"}),
              Reply("first"),
              ToolCall("Bash", {"command": f"test -e {warm} && {command}"}), Reply("planted")])
    name = f"boundary-{kind}"
    s = session(name, workspace=git_repo, docker=docker_options(sandbox_image, keep_warm=60))
    try:
        with anyio.fail_after(GUARD):
            first = [e async for e in s.stream("first")]
            second = [e async for e in s.stream("second")]
        assert isinstance(first[-1], Result) and isinstance(second[-1], Result)
        broken = host_git(git_repo, home)
        assert not marker.exists()
        assert broken == []
        assert any(f".git/{named}" in line for line in security(second)), security(second)
    finally:
        remove_session(name)


@pytest.mark.parametrize("kind", PLANTS)
async def test_in_a_submodule(kind: str, scripted: Any, sandbox_image: str, tmp_path: Path,
                              home: Path) -> None:
    marker = tmp_path / "ran-on-the-host"
    library = make_repo(tmp_path / "library", {"lib.py": "LIB = 1\n"})
    repo = make_repo(tmp_path / "repo", {"app.py": "APP = 1\n"})
    git(repo, "-c", "protocol.file.allow=always", "submodule", "add", "-q", str(library), "lib")
    git(repo, "commit", "-q", "-m", "add lib")
    command, named = plant(kind, marker, repo / "lib")
    scripted([ToolCall("Bash", {"command": f"cd lib && {command}"}), Reply("planted")])
    events = await run_job(repo, sandbox_image)
    broken = host_git(repo / "lib", home) + host_git(repo, home)
    assert not marker.exists()
    assert broken == []
    wanted = ".git/modules/lib" if kind == "renamed" else f".git/modules/lib/{named}"
    assert any(line.startswith(wanted) for line in security(events)), security(events)


async def test_the_object_stores_host_path_leads_nowhere(scripted: Any, sandbox_image: str,
                                                         git_repo: Path, tmp_path: Path,
                                                         home: Path) -> None:
    """The sandbox sees the user's object store at its host path: beside it is not their git dir,
    and the store itself cannot be written."""
    marker = tmp_path / "ran-on-the-host"
    config = (git_repo / ".git" / "config").read_bytes()
    objects = sorted((git_repo / ".git" / "objects").rglob("*"))
    hook = f"printf '#!/bin/sh\\ntouch {marker}\\n'"
    command = ('A=$(head -1 "$(git rev-parse --git-common-dir)/objects/info/alternates") && '
               f'test "$A" = "{git_repo}/.git/objects" && echo "found the store" && '
               'D=$(dirname "$A") && '
               f'git config -f "$D/config" core.fsmonitor "touch {marker}; false"; '
               f'mkdir -p "$D/hooks"; {hook} > "$D/hooks/pre-commit"; '
               'chmod +x "$D/hooks/pre-commit"; touch "$A/planted"; echo planted > "$A/info/x"; '
               'echo "$A" > "$A/info/alternates"; true')
    scripted([ToolCall("Bash", {"command": command}), Reply("planted")])
    events = await run_job(git_repo, sandbox_image)
    assert any(isinstance(e, ToolResult) and "found the store" in e.output for e in events)
    assert sorted((git_repo / ".git" / "objects").rglob("*")) == objects
    assert (git_repo / ".git" / "config").read_bytes() == config
    assert not (git_repo / ".git" / "hooks" / "pre-commit").exists()
    broken = host_git(git_repo, home)
    assert not marker.exists()
    assert broken == []


CLAUDES_GIT_WORK = ("echo 'X = 1' > feature.py && git add feature.py && "
                    "git commit -q -m \"Claude's commit\" && git branch claude-branch && "
                    "echo 'S = 1' > stashed.py && git add stashed.py && "
                    "git stash push -q -m \"Claude's stash\" -- stashed.py && git status --short")


def user_edits(repo: Path) -> None:
    (repo / "app.py").write_text("GREETING = 'the user is still editing'\n")
    (repo / "scratch.txt").write_text("the user's untracked notes\n")


def assert_user_edits_kept(repo: Path) -> None:
    assert (repo / "app.py").read_text() == "GREETING = 'the user is still editing'\n"
    assert (repo / "scratch.txt").read_text() == "the user's untracked notes\n"


async def test_git_work_comes_back_and_the_users_own_changes_stay(
        scripted: Any, sandbox_image: str, git_repo: Path) -> None:
    user_edits(git_repo)
    scripted([ToolCall("Bash", {"command":
                                "git stash -q && git checkout -q -b feature && "
                                "echo 'X = 1' > feature.py && git add feature.py && "
                                "git commit -q -m \"Claude's feature\" && git stash pop -q && "
                                "git status --short"}),
              Reply("committed")])
    events = await run_job(git_repo, sandbox_image)
    assert security(events) == []
    assert git(git_repo, "log", "-1", "--format=%s", "feature") == "Claude's feature\n"
    assert git(git_repo, "symbolic-ref", "--short", "HEAD") == "feature\n"
    assert_user_edits_kept(git_repo)
    assert git(git_repo, "status", "--porcelain") == " M app.py\n?? scratch.txt\n"


async def test_a_commit_on_the_checked_out_branch_a_branch_and_a_stash_come_back(
        scripted: Any, sandbox_image: str, git_repo: Path) -> None:
    user_edits(git_repo)
    scripted([ToolCall("Bash", {"command": CLAUDES_GIT_WORK}), Reply("committed")])
    events = await run_job(git_repo, sandbox_image)
    assert security(events) == []
    assert git(git_repo, "symbolic-ref", "--short", "HEAD") == "main\n"
    assert git(git_repo, "log", "-1", "--format=%s", "main") == "Claude's commit\n"
    assert git(git_repo, "show", "--name-only", "--format=", "main") == "feature.py\n"
    assert git(git_repo, "rev-parse", "claude-branch") == git(git_repo, "rev-parse", "main")
    assert "Claude's stash" in git(git_repo, "stash", "list")
    assert not (git_repo / "stashed.py").exists()
    assert_user_edits_kept(git_repo)
    assert git(git_repo, "status", "--porcelain") == " M app.py\n?? scratch.txt\n"


async def test_a_commit_a_branch_and_a_stash_in_a_worktree_come_back(
        scripted: Any, sandbox_image: str, git_repo: Path) -> None:
    user_edits(git_repo)
    scripted([ToolCall("Bash", {"command": CLAUDES_GIT_WORK}), Reply("committed")])
    events = await run_job(git_repo, sandbox_image, worktree="wt-commit")
    assert security(events) == []
    assert git(git_repo, "log", "-1", "--format=%s", "wt-commit") == "Claude's commit\n"
    assert git(git_repo, "rev-parse", "claude-branch") == git(git_repo, "rev-parse", "wt-commit")
    assert "Claude's stash" in git(git_repo, "stash", "list")
    tree = git_repo.parent / f"{git_repo.name}-wt-commit"
    assert git(tree, "symbolic-ref", "--short", "HEAD") == "wt-commit\n"
    assert git(tree, "status", "--porcelain") == ""
    assert git(git_repo, "symbolic-ref", "--short", "HEAD") == "main\n"
    assert_user_edits_kept(git_repo)
    assert git(git_repo, "status", "--porcelain") == " M app.py\n?? scratch.txt\n"


async def test_a_commit_in_a_submodule_and_its_superproject_comes_back(
        scripted: Any, sandbox_image: str, tmp_path: Path) -> None:
    library = make_repo(tmp_path / "library", {"lib.py": "LIB = 1\n"})
    repo = make_repo(tmp_path / "repo", {"app.py": "APP = 1\n"})
    git(repo, "-c", "protocol.file.allow=always", "submodule", "add", "-q", str(library), "lib")
    git(repo, "commit", "-q", "-m", "add lib")
    scripted([ToolCall("Bash", {"command":
                                "cd lib && echo 'LIB = 2' > lib.py && "
                                "git commit -q -am \"Claude's change to lib\" && cd .. && "
                                "git add lib && git commit -q -m \"Claude bumps lib\""}),
              Reply("committed")])
    events = await run_job(repo, sandbox_image)
    assert security(events) == []
    assert git(repo / "lib", "log", "-1", "--format=%s") == "Claude's change to lib\n"
    assert git(repo, "log", "-1", "--format=%s") == "Claude bumps lib\n"
    assert git(repo, "status", "--porcelain") == ""
    assert (repo / "lib" / ".git").read_text().startswith("gitdir: ")


def test_the_cli_names_the_path_on_stderr_and_counts_it(scripted: Any, sandbox_image: str,
                                                        git_repo: Path, tmp_path: Path) -> None:
    marker = tmp_path / "ran-on-the-host"
    command, _ = plant("fsmonitor", marker, git_repo)
    scripted([ToolCall("Bash", {"command": command}), Reply("planted")])
    done = subprocess.run([sys.executable, "-m", "channelcoder", "run", "--docker",
                           "--docker-image", sandbox_image, "-p", "do it"],
                          cwd=git_repo, capture_output=True, text=True, timeout=GUARD)
    assert done.returncode == 0, done.stderr
    assert any(line.startswith("security: .git/config: sets core.fsmonitor")
               for line in done.stderr.splitlines()), done.stderr
    assert "1 security event(s)" in done.stderr
    git(git_repo, "status")
    assert not marker.exists()
