"""channelcoder's own git calls on the host never run a program a repository's config names.

The repository below plants every kind (hooks in .git/hooks and in a `core.hooksPath` directory,
`core.fsmonitor`, a filter and a textconv driver named by .gitattributes, an external diff, one
of them through an included file); each writes a marker file outside the repository. Then the
host-side operations run for real — a snapshot and its collection, a worktree made and removed,
the standby's fingerprint, a git mirror filled and brought back — and give the right answers
while no marker appears.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from channelcoder.config import WorktreeOptions
from channelcoder.sandbox.warm.standby import fingerprint
from channelcoder.workspace.gitcmd import find_repo
from channelcoder.workspace.mirror import open_mirror
from channelcoder.workspace.snapshot import create_snapshot
from channelcoder.workspace.worktrees import ensure_worktree, remove_worktree
from tests.conftest import git


@pytest.fixture
def planted(git_repo: Path, tmp_path: Path) -> Path:
    """`git_repo` with every program planted; the markers go to tmp_path/markers/<kind>."""
    markers = tmp_path / "markers"
    markers.mkdir()

    def touch(kind: str) -> str:
        return f"touch {markers / kind}"

    (git_repo / ".gitattributes").write_text("*.py filter=x diff=t\n*.txt filter=inc\n")
    (git_repo / "notes.txt").write_text("notes\n")
    git(git_repo, "add", ".")
    git(git_repo, "commit", "-q", "-m", "attributes")
    hooks = git_repo / ".git" / "hooks"
    hooks.mkdir(exist_ok=True)
    elsewhere = tmp_path / "hooks-elsewhere"
    elsewhere.mkdir()
    for directory in (hooks, elsewhere):
        for name in ("pre-commit", "post-commit", "post-checkout", "reference-transaction",
                     "post-index-change"):
            hook = directory / name
            hook.write_text(f"#!/bin/sh\n{touch('hook-' + name)}\n")
            hook.chmod(0o755)
    included = git_repo / ".git" / "more.cfg"
    included.write_text(f'[filter "inc"]\n\tclean = "{touch("included-filter")}; cat"\n')
    with (git_repo / ".git" / "config").open("a") as config:
        config.write(f'[core]\n\tfsmonitor = "{touch("fsmonitor")}; false"\n'
                     f'[filter "x"]\n\tclean = "{touch("clean")}; cat"\n'
                     f'\tsmudge = "{touch("smudge")}; cat"\n\trequired = true\n'
                     f'[diff "t"]\n\ttextconv = "{touch("textconv")}; cat"\n'
                     f'\tcommand = "{touch("diff-command")}; true"\n'
                     f'[diff]\n\texternal = "{touch("external-diff")}; true"\n'
                     f'[include]\n\tpath = {included}\n')
    assert not list(markers.iterdir())
    (git_repo / "app.py").write_text("GREETING = 'changed'\n")
    return markers


def test_snapshots_run_nothing_the_repository_configures(git_repo: Path, planted: Path) -> None:
    snap = create_snapshot(git_repo, {str(git_repo / "app.py"): "GREETING = 'buffer'\n"})
    try:
        (snap.cwd / "app.py").write_text("GREETING = 'job'\n")
        (snap.cwd / "notes.txt").write_text("job notes\n")
        changes = snap.collect()
        assert sorted(changes.paths) == ["app.py", "notes.txt"]
    finally:
        snap.discard()
    assert sorted(p.name for p in planted.iterdir()) == []


def test_worktrees_run_nothing_the_repository_configures(git_repo: Path, planted: Path) -> None:
    tree, created = ensure_worktree(git_repo, WorktreeOptions(branch="side"))
    assert created and (tree.path / "app.py").read_text() == "GREETING = 'hello'\n"
    remove_worktree(git_repo, "side")
    assert not tree.path.exists()
    assert sorted(p.name for p in planted.iterdir()) == []


def test_the_fingerprint_find_repo_and_a_mirror_run_nothing_either(
        git_repo: Path, planted: Path) -> None:
    assert fingerprint(git_repo, git_repo.parent) != fingerprint(git_repo.parent, git_repo.parent)
    repo = find_repo(git_repo)
    assert repo is not None and repo.branch == "main"
    mirror = open_mirror(git_repo, "job-host-git", keep=False)
    assert mirror is not None
    mirror.fill()
    after = mirror.bring_back()
    mirror.release()
    assert after.events == [] and after.notices == []
    assert sorted(p.name for p in planted.iterdir()) == []


def test_plain_git_would_have_run_them(git_repo: Path, planted: Path) -> None:
    """The planted repository is armed: the user's own `git status` runs its fsmonitor."""
    git(git_repo, "status")
    assert "fsmonitor" in {p.name for p in planted.iterdir()}
