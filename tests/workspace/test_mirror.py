"""The sandbox's git mirror with real git: what comes back into the user's repository, what
never does, and a job whose process died.

Here the "job" is git run against the mirror exactly as git inside the sandbox runs it (the
mirror as the git dir, the workspace as the work tree); the end-to-end tests with the engine and
the Claude CLI are in tests/sandbox/test_git_boundary.py.
"""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

from channelcoder.workspace.mirror import Mirror, open_mirror, recover
from tests.conftest import die_mid_job, git


def job_git(mirror: Mirror, repo: Path, *args: str) -> str:
    """git as the job runs it inside the sandbox: the mirror is its git dir."""
    env = {**os.environ, "GIT_DIR": str(mirror.git_dir), "GIT_WORK_TREE": str(repo),
           "GIT_AUTHOR_NAME": "Claude", "GIT_AUTHOR_EMAIL": "claude@example.com",
           "GIT_COMMITTER_NAME": "Claude", "GIT_COMMITTER_EMAIL": "claude@example.com"}
    return subprocess.run(["git", *args], cwd=repo, env=env, check=True, capture_output=True,
                          text=True).stdout


def opened(repo: Path, key: str = "job-test") -> Mirror:
    mirror = open_mirror(repo, key, keep=False)
    assert mirror is not None
    assert mirror.fill() == []
    return mirror


def test_a_commit_a_branch_and_the_staged_tree_come_back_and_the_users_files_are_kept(
        git_repo: Path) -> None:
    (git_repo / "app.py").write_text("GREETING = 'dirty, not committed'\n")
    (git_repo / "notes.txt").write_text("untracked, the user's\n")
    mirror = opened(git_repo)
    assert job_git(mirror, git_repo, "status", "--porcelain") == " M app.py\n?? notes.txt\n"
    (git_repo / "feature.py").write_text("X = 1\n")
    job_git(mirror, git_repo, "checkout", "-q", "-b", "feature")
    job_git(mirror, git_repo, "add", "feature.py")
    job_git(mirror, git_repo, "commit", "-q", "-m", "Claude's commit")
    after = mirror.bring_back()
    mirror.release()
    assert after.events == []
    assert git(git_repo, "log", "-1", "--format=%s %an", "feature") == "Claude's commit Claude\n"
    assert git(git_repo, "symbolic-ref", "--short", "HEAD") == "feature\n"
    assert git(git_repo, "status", "--porcelain") == " M app.py\n?? notes.txt\n"
    assert (git_repo / "app.py").read_text() == "GREETING = 'dirty, not committed'\n"
    assert any("feature → " in n and "Claude's commit" in n for n in after.notices)


def test_a_branch_the_user_moved_during_the_job_is_not_overwritten(git_repo: Path) -> None:
    mirror = opened(git_repo)
    (git_repo / "a.py").write_text("A = 1\n")
    job_git(mirror, git_repo, "add", "a.py")
    job_git(mirror, git_repo, "commit", "-q", "-m", "Claude's work")
    git(git_repo, "commit", "-q", "--allow-empty", "-m", "the user's own commit meanwhile")
    after = mirror.bring_back()
    mirror.release()
    assert git(git_repo, "log", "-1", "--format=%s", "main") == "the user's own commit meanwhile\n"
    assert git(git_repo, "log", "-1", "--format=%s", "main-claude") == "Claude's work\n"
    assert any("main-claude" in n for n in after.notices)


def test_control_files_the_job_changed_never_reach_the_users_repository(
        git_repo: Path, tmp_path: Path) -> None:
    marker = tmp_path / "ran-on-the-host"
    config_before = (git_repo / ".git" / "config").read_bytes()
    mirror = opened(git_repo)
    job_git(mirror, git_repo, "config", "core.fsmonitor", f"touch {marker}; false")
    hook = mirror.git_dir / "hooks" / "post-commit"
    hook.parent.mkdir()
    hook.write_text(f"#!/bin/sh\ntouch {marker}\n")
    hook.chmod(0o755)
    (mirror.git_dir / "info" / "attributes").write_text("* filter=x\n")
    after = mirror.bring_back()
    mirror.release()
    assert sorted(e.path for e in after.events) == [
        ".git/config", ".git/hooks/post-commit", ".git/info/attributes"]
    assert "core.fsmonitor" in next(e.change for e in after.events if e.path == ".git/config")
    assert (git_repo / ".git" / "config").read_bytes() == config_before
    git(git_repo, "status")
    git(git_repo, "commit", "-q", "--allow-empty", "-m", "after the job")
    assert not marker.exists()


def test_a_job_whose_process_died_is_brought_back_by_the_next_one(
        git_repo: Path, tmp_path: Path) -> None:
    marker = tmp_path / "ran-on-the-host"
    die_mid_job(git_repo, f"touch {marker}; false")
    assert git(git_repo, "log", "-1", "--format=%s") == "initial\n"
    found = recover(git_repo.resolve())
    assert [e.path for e in found.events] == [".git/config"]
    assert git(git_repo, "log", "-1", "--format=%s") == "made before the crash\n"
    assert any("ended without cleaning up" in n for n in found.notices)
    assert recover(git_repo.resolve()).events == []  # once
    git(git_repo, "status")
    assert not marker.exists()


def test_a_running_jobs_mirror_is_left_alone(git_repo: Path) -> None:
    mirror = opened(git_repo, "job-running")
    job_git(mirror, git_repo, "commit", "-q", "--allow-empty", "-m", "still working")
    assert recover(git_repo.resolve()).notices == []
    assert git(git_repo, "log", "-1", "--format=%s") == "initial\n"
    mirror.bring_back()
    mirror.release()
    assert git(git_repo, "log", "-1", "--format=%s") == "still working\n"


def test_a_mirror_the_job_emptied_is_reported_and_nothing_comes_back(git_repo: Path) -> None:
    mirror = opened(git_repo, "job-emptied")
    job_git(mirror, git_repo, "commit", "-q", "--allow-empty", "-m", "then wiped")
    for entry in sorted(mirror.git_dir.rglob("*"), reverse=True):
        if entry.is_dir() and not entry.is_symlink():
            entry.rmdir()
        else:
            entry.unlink()
    after = mirror.bring_back()
    mirror.release()
    assert [(e.path, e.change) for e in after.events] == [
        (".git", "emptied or replaced the sandbox's git dir")]
    assert git(git_repo, "log", "-1", "--format=%s") == "initial\n"
    assert git(git_repo, "status", "--porcelain") == ""
