"""Git worktrees with real git, and `channelcoder worktree ls|create|rm|prune`."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from channelcoder.config import WorktreeOptions
from channelcoder.errors import WorkspaceError
from channelcoder.workspace.worktrees import (
    default_path,
    ensure_worktree,
    list_worktrees,
    release_worktree,
    remove_worktree,
    slug,
)
from tests.conftest import git, make_repo


@pytest.mark.parametrize(("branch", "expected"), [
    ("experiment/risky", "experiment-risky"),
    ("feat/ü-ñ", "feat-ü-ñ"),
    ("a//b", "a-b"),
    ("fix:1", "fix-1"),
])
def test_slug(branch: str, expected: str) -> None:
    assert slug(branch) == expected


def test_create_then_reuse_beside_the_repository(git_repo: Path) -> None:
    tree, created = ensure_worktree(git_repo, WorktreeOptions(branch="experiment/risky"))
    assert created and tree.path == git_repo.parent / "repo-experiment-risky"
    assert tree.branch == "experiment/risky" and (tree.path / "app.py").is_file()
    assert git(tree.path, "branch", "--show-current").strip() == "experiment/risky"
    again, created_again = ensure_worktree(git_repo, WorktreeOptions(branch="experiment/risky"))
    assert not created_again and again.path == tree.path
    assert [t.branch for t in list_worktrees(git_repo)] == ["main", "experiment/risky"]
    # from inside the worktree, the same branch resolves to the same worktree
    from_inside, _ = ensure_worktree(tree.path, WorktreeOptions(branch="experiment/risky"))
    assert from_inside.path == tree.path


def test_an_existing_branch_is_checked_out_and_base_starts_a_new_one(git_repo: Path) -> None:
    first = git(git_repo, "rev-parse", "HEAD").strip()
    (git_repo / "app.py").write_text("GREETING = 'second'\n")
    git(git_repo, "commit", "-qam", "second")
    git(git_repo, "branch", "existing", first)
    tree, _ = ensure_worktree(git_repo, WorktreeOptions(branch="existing"))
    assert (tree.path / "app.py").read_text() == "GREETING = 'hello'\n"
    based, _ = ensure_worktree(git_repo, WorktreeOptions(branch="from-base", base=first))
    assert git(based.path, "rev-parse", "HEAD").strip() == first


def test_paths_with_spaces_and_non_ascii(tmp_path: Path) -> None:
    repo = make_repo(tmp_path / "Mein Repo ü", {"a.txt": "a\n"})
    tree, created = ensure_worktree(repo, WorktreeOptions(branch="änderung/neu"))
    assert created and tree.path == tmp_path / "Mein Repo ü-änderung-neu"
    assert (tree.path / "a.txt").read_text() == "a\n"
    remove_worktree(repo, "änderung/neu")
    assert not tree.path.exists()


def test_removal_refuses_a_dirty_worktree_unless_forced(git_repo: Path) -> None:
    tree, _ = ensure_worktree(git_repo, WorktreeOptions(branch="wip"))
    (tree.path / "app.py").write_text("GREETING = 'unsaved work'\n")
    (tree.path / "new.txt").write_text("untracked\n")
    with pytest.raises(WorkspaceError) as info:
        remove_worktree(git_repo, "wip")
    assert "uncommitted changes" in info.value.message and "app.py" in info.value.message
    assert "--force" in info.value.hint
    assert (tree.path / "app.py").read_text() == "GREETING = 'unsaved work'\n"
    assert release_worktree(git_repo, tree) is not None and tree.path.exists()
    remove_worktree(git_repo, "wip", force=True)
    assert not tree.path.exists()
    assert "wip" in git(git_repo, "branch", "--list", "wip")


def test_a_clean_keep_false_worktree_is_removed_after_the_job(git_repo: Path) -> None:
    tree, _ = ensure_worktree(git_repo, WorktreeOptions(branch="temp", keep=False))
    notice = release_worktree(git_repo, tree)
    assert notice is not None and "removed" in notice and not tree.path.exists()


@pytest.mark.parametrize(("branch", "message"), [
    ("main", "checked out in the main working tree"),
    ("bad..name", "not a valid branch name"),
])
def test_unusable_branches(git_repo: Path, branch: str, message: str) -> None:
    with pytest.raises(WorkspaceError, match=message):
        ensure_worktree(git_repo, WorktreeOptions(branch=branch))


def test_a_foreign_directory_in_the_way_is_not_overwritten(git_repo: Path) -> None:
    target = default_path(git_repo, "busy")
    target.mkdir()
    (target / "precious.txt").write_text("mine\n")
    with pytest.raises(WorkspaceError) as info:
        ensure_worktree(git_repo, WorktreeOptions(branch="busy"))
    assert "already exists" in info.value.message and "worktree.path" in info.value.hint
    assert (target / "precious.txt").read_text() == "mine\n"


def test_a_bad_base_is_a_clear_error(git_repo: Path) -> None:
    with pytest.raises(WorkspaceError, match="cannot create the worktree for 'x'"):
        ensure_worktree(git_repo, WorktreeOptions(branch="x", base="no-such-ref"))


def test_a_workspace_that_is_not_a_repository(tmp_path: Path) -> None:
    with pytest.raises(WorkspaceError) as info:
        ensure_worktree(tmp_path, WorktreeOptions(branch="x"))
    assert "needs a git repository" in info.value.message and "git init" in info.value.hint


def test_a_deleted_worktree_directory_is_pruned_and_recreated(git_repo: Path) -> None:
    tree, _ = ensure_worktree(git_repo, WorktreeOptions(branch="flaky"))
    shutil.rmtree(tree.path)
    again, created = ensure_worktree(git_repo, WorktreeOptions(branch="flaky"))
    assert created and again.path == tree.path and (again.path / "app.py").is_file()


def cli(cwd: Path, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "channelcoder", "worktree", *args], cwd=cwd,
                          env=dict(os.environ), capture_output=True, text=True, timeout=60)


def test_worktree_command(git_repo: Path) -> None:
    made = cli(git_repo, "create", "feature/cli", "--base", "HEAD")
    assert made.returncode == 0, made.stderr
    path = git_repo.parent / "repo-feature-cli"
    assert f"created worktree {path}" in made.stdout
    assert "reusing" in cli(git_repo, "create", "feature/cli").stdout
    listed = cli(git_repo, "ls")
    assert "main" in listed.stdout and f"feature/cli  {path}" in listed.stdout
    (path / "dirty.txt").write_text("x")
    refused = cli(git_repo, "rm", "feature/cli")
    assert refused.returncode == 1 and "uncommitted changes" in refused.stderr
    assert "hint:" in refused.stderr and "Traceback" not in refused.stderr
    removed = cli(git_repo, "rm", "--force", "feature/cli")
    assert removed.returncode == 0 and not path.exists()
    assert "branch feature/cli kept" in removed.stdout
    assert cli(git_repo, "prune").returncode == 0
    outside = cli(git_repo.parent, "ls")
    assert outside.returncode == 1 and "not in one" in outside.stderr
