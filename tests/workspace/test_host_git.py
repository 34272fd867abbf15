"""channelcoder's own git calls on the host never run a program a repository's config names.

The repository below plants every kind (hooks in .git/hooks and in a `core.hooksPath` directory,
`core.fsmonitor`, a filter and a textconv driver named by .gitattributes, an external diff, one
of them through an included file); each writes a marker file outside the repository. Then the
host-side operations run for real — a snapshot and its collection, a worktree made and removed,
the standby's fingerprint, a git mirror filled and brought back — and give the right answers
while no marker appears. Then the cases around it: porcelain diffs, a signed commit's log, a
driver added after the helper first looked, a path rewritten into a command, a submodule's own
drivers. Each case that plants outside the fixture also shows that plain git would have run it.
"""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

import pytest

from channelcoder.config import WorktreeOptions
from channelcoder.sandbox.warm.standby import fingerprint
from channelcoder.workspace.gitcmd import find_repo, git_text, run_git
from channelcoder.workspace.mirror import open_mirror
from channelcoder.workspace.snapshot import create_snapshot
from channelcoder.workspace.worktrees import ensure_worktree, remove_worktree
from tests.conftest import git, make_repo


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


def test_porcelain_diff_log_and_show_run_no_driver(git_repo: Path, planted: Path) -> None:
    """textconv, `diff.<x>.command` and `diff.external` are planted; the diffs are git's own."""
    assert "+GREETING = 'changed'" in run_git(["diff"], cwd=git_repo).stdout.decode()
    run_git(["commit", "-q", "-am", "changed"], cwd=git_repo)
    for args in (["log", "-1", "-p"], ["show"], ["diff", "HEAD~1"]):
        out = run_git(args, cwd=git_repo).stdout.decode()
        assert "-GREETING = 'hello'" in out and "+GREETING = 'changed'" in out, args
    assert sorted(p.name for p in planted.iterdir()) == []


def test_a_signed_commit_is_logged_without_its_gpg_program(git_repo: Path, tmp_path: Path) -> None:
    marker = tmp_path / "gpg-ran"
    gpg = tmp_path / "fake-gpg"
    gpg.write_text(f"#!/bin/sh\ntouch {marker}\nexit 1\n")
    gpg.chmod(0o755)
    git(git_repo, "config", "gpg.program", str(gpg))
    git(git_repo, "config", "log.showSignature", "true")
    tree = git(git_repo, "rev-parse", "HEAD^{tree}").strip()
    body = (f"tree {tree}\nauthor A <a@x> 1 +0000\ncommitter A <a@x> 1 +0000\n"
            "gpgsig -----BEGIN PGP SIGNATURE-----\n x\n -----END PGP SIGNATURE-----\n\nsigned\n")
    signed = git_text(run_git(["hash-object", "-t", "commit", "-w", "--stdin"], cwd=git_repo,
                              stdin=body.encode()))
    assert git_text(run_git(["log", "-1", "--format=%s", signed], cwd=git_repo)) == "signed"
    assert not marker.exists()
    git(git_repo, "log", "-1", "--format=%s", signed)
    assert marker.exists()  # the user's own git would have run it


def test_a_driver_added_later_is_turned_off_at_once(git_repo: Path, planted: Path) -> None:
    """What the helper knows about a repository's drivers follows its config files."""
    assert find_repo(git_repo) is not None
    included = git_repo / ".git" / "more.cfg"
    with included.open("a") as config:
        config.write(f'[filter "late"]\n\tclean = "touch {planted / "late"}; cat"\n'
                     "\trequired = true\n")
    (git_repo / "late.md").write_text("late\n")
    with (git_repo / ".gitattributes").open("a") as attributes:
        attributes.write("*.md filter=late\n")
    run_git(["add", "late.md"], cwd=git_repo)
    blob = run_git(["cat-file", "-p", ":late.md"], cwd=git_repo).stdout
    assert blob == b"late\n"
    assert sorted(p.name for p in planted.iterdir()) == []


def test_a_path_cannot_be_turned_into_a_command(git_repo: Path, tmp_path: Path) -> None:
    """`url.<x>.insteadOf` would make a fetch from a path run `ext::` (or a git:// proxy)."""
    other = make_repo(tmp_path / "other", {"b.txt": "b\n"})
    marker = tmp_path / "ext-ran"
    git(git_repo, "config", f"url.ext::sh -c touch% {marker}% #.insteadOf", str(other))
    git(git_repo, "config", "protocol.ext.allow", "always")
    done = run_git(["fetch", "-q", str(other), "main"], cwd=git_repo, check=False)
    assert done.returncode != 0 and b"not allowed" in done.stderr
    assert not marker.exists()
    subprocess.run(["git", "fetch", "-q", str(other), "main"], cwd=git_repo, check=False,
                   capture_output=True)
    assert marker.exists()  # the user's own git would have run it


def test_the_fingerprint_runs_no_submodule_driver(tmp_path: Path) -> None:
    """`git status` goes into submodules, each with its own config: their drivers are off too."""
    inner = make_repo(tmp_path / "inner", {"lib.py": "x = 1\n", ".gitattributes": "*.py filter=s\n"})
    outer = make_repo(tmp_path / "outer", {"README.md": "outer\n"})
    git(outer, "-c", "protocol.file.allow=always", "submodule", "add", "-q", str(inner), "sub")
    git(outer, "commit", "-q", "-m", "sub")
    marker = tmp_path / "submodule-filter"
    module_config = outer / ".git" / "modules" / "sub" / "config"
    with module_config.open("a") as config:
        config.write(f'[filter "s"]\n\tclean = "touch {marker}; cat"\n\trequired = true\n')
    lib = outer / "sub" / "lib.py"
    os.utime(lib, (lib.stat().st_atime, lib.stat().st_mtime + 5))
    first = fingerprint(outer, tmp_path)
    assert not marker.exists()
    assert fingerprint(outer, tmp_path) == first
    git(outer, "status")
    assert marker.exists()  # the user's own git would have run it
