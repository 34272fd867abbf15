"""Review snapshots with real git: what the job sees, what comes back, and the user's tree untouched."""

from __future__ import annotations

import hashlib
import os
import shutil
import subprocess
import threading
import time
from pathlib import Path

import pytest

from channelcoder.errors import WorkspaceError
from channelcoder.state import read_json, write_json
from channelcoder.workspace import snapshot as snapshots
from channelcoder.workspace.snapshot import create_snapshot, discard, open_snapshot
from tests.conftest import git, make_repo


def fingerprint(root: Path) -> dict[str, str]:
    """Every file under root (the .git directory included) -> sha256 of its bytes, mode, mtime.

    Object files are compared without their mtime: git "freshens" (touches) an object that
    already exists in a borrowed object store instead of writing it again.
    """
    out: dict[str, str] = {}
    for dirpath, dirnames, filenames in os.walk(root):
        dirnames.sort()
        for name in filenames + [d for d in dirnames if Path(dirpath, d).is_symlink()]:
            path = Path(dirpath, name)
            stat = path.lstat()
            data = os.readlink(path).encode() if path.is_symlink() else path.read_bytes()
            rel = str(path.relative_to(root))
            mtime = "" if rel.startswith(".git/objects/") else str(stat.st_mtime_ns)
            out[rel] = f"{hashlib.sha256(data).hexdigest()}:{stat.st_mode:o}:{mtime}"
    return out


@pytest.fixture
def dirty_repo(git_repo: Path) -> Path:
    """app.py committed; staged + unstaged edits, a deletion, untracked and ignored files."""
    repo = git_repo
    (repo / ".gitignore").write_text("*.log\nbuild/\n")
    (repo / "lib.py").write_text("def f():\n    return 1\n")
    (repo / "gone.txt").write_text("to be deleted\n")
    (repo / "crlf.txt").write_bytes(b"one\r\ntwo\r\n")
    git(repo, "add", ".")
    git(repo, "commit", "-q", "-m", "more")
    (repo / "app.py").write_text("GREETING = 'staged'\n")
    git(repo, "add", "app.py")
    (repo / "app.py").write_text("GREETING = 'unstaged'\n")
    (repo / "gone.txt").unlink()
    (repo / "notes.md").write_text("untracked notes\n")
    (repo / "debug.log").write_text("ignored\n")
    (repo / "build").mkdir()
    (repo / "build" / "out.bin").write_bytes(b"\0ignored")
    return repo


@pytest.fixture
def snap_cleanup() -> list[snapshots.Snapshot]:
    made: list[snapshots.Snapshot] = []
    yield made
    for snap in made:
        snap.discard()


def test_the_job_sees_head_plus_every_uncommitted_change_and_buffers(
        dirty_repo: Path, snap_cleanup: list[snapshots.Snapshot]) -> None:
    before = fingerprint(dirty_repo)
    snap = create_snapshot(dirty_repo, {"lib.py": "def f():\n    return 2  # unsaved\n",
                                        str(dirty_repo / "new_unsaved.py"): "x = 1\n",
                                        "debug.log": "a buffer of an ignored file"})
    snap_cleanup.append(snap)
    tree = snap.cwd
    assert tree != dirty_repo and str(tree).startswith(str(snapshots.snapshots_dir()))
    assert (tree / "app.py").read_text() == "GREETING = 'unstaged'\n"
    assert (tree / "lib.py").read_text() == "def f():\n    return 2  # unsaved\n"
    assert (tree / "new_unsaved.py").read_text() == "x = 1\n"
    assert (tree / "notes.md").read_text() == "untracked notes\n"
    assert (tree / "crlf.txt").read_bytes() == b"one\r\ntwo\r\n"
    assert not (tree / "gone.txt").exists()
    assert not (tree / "debug.log").exists() and not (tree / "build").exists()
    assert fingerprint(dirty_repo) == before


def test_git_inside_shows_the_users_uncommitted_work_as_uncommitted(
        dirty_repo: Path, snap_cleanup: list[snapshots.Snapshot]) -> None:
    snap = create_snapshot(dirty_repo, {"lib.py": "def f():\n    return 3\n"})
    snap_cleanup.append(snap)
    inside = git(snap.cwd, "status", "--porcelain=v1", "--untracked-files=all")
    outside = git(dirty_repo, "status", "--porcelain=v1", "--untracked-files=all")
    assert sorted(outside.splitlines()) == sorted(["?? notes.md", " D gone.txt", "MM app.py"])
    # the same, plus the unsaved buffer as an unstaged modification
    assert sorted(inside.splitlines()) == sorted(["?? notes.md", " D gone.txt", " M lib.py",
                                                  "MM app.py"])
    assert git(snap.cwd, "rev-parse", "HEAD") == git(dirty_repo, "rev-parse", "HEAD")
    assert git(snap.cwd, "branch", "--show-current").strip() == "main"
    assert "'staged'" in git(snap.cwd, "diff", "--cached")
    assert git(snap.cwd, "log", "--format=%s") == git(dirty_repo, "log", "--format=%s")


def test_edits_come_back_as_changes_with_a_diff_that_applies(
        dirty_repo: Path, tmp_path: Path, snap_cleanup: list[snapshots.Snapshot]) -> None:
    snap = create_snapshot(dirty_repo)
    snap_cleanup.append(snap)
    tree = snap.cwd
    before = fingerprint(dirty_repo)
    big = "".join(f"line {i} of a file that is long enough to detect a rename\n" for i in range(40))
    (tree / "lib.py").write_text("def f():\n    return 42\n")
    (tree / "notes.md").unlink()
    (tree / "added.txt").write_text("brand new\nno final newline")
    (tree / "crlf.txt").write_bytes(b"one\r\nTWO\r\n")
    (tree / "image.png").write_bytes(bytes(range(256)) * 4)
    (tree / "tool.sh").write_text("#!/bin/sh\n")
    os.chmod(tree / "app.py", 0o755)
    (tree / "old_name.txt").write_text(big)
    (tree / "more.log").write_text("ignored output\n")
    changes = snap.collect()
    by_path = {c.path: c for c in changes.files}
    assert set(by_path) == {"lib.py", "notes.md", "added.txt", "crlf.txt", "image.png",
                            "tool.sh", "app.py", "old_name.txt"}
    assert by_path["lib.py"].status == "modified"
    assert by_path["lib.py"].old_text == "def f():\n    return 1\n"
    assert by_path["lib.py"].new_text == "def f():\n    return 42\n"
    assert by_path["notes.md"].status == "deleted" and by_path["notes.md"].new_text is None
    assert by_path["notes.md"].old_text == "untracked notes\n"
    assert by_path["added.txt"].status == "added" and by_path["added.txt"].old_text is None
    assert by_path["added.txt"].new_text == "brand new\nno final newline"
    assert by_path["crlf.txt"].new_text == "one\r\nTWO\r\n"
    assert by_path["image.png"].binary and by_path["image.png"].new_text is None
    assert by_path["app.py"].mode_changed and by_path["app.py"].status == "modified"
    assert changes.base == snap.id
    assert "+    return 42" in changes.diff and "new mode 100755" in changes.diff
    assert fingerprint(dirty_repo) == before
    # the diff applies to a copy of the user's files and reproduces the job's tree
    copy = tmp_path / "copy"
    shutil.copytree(dirty_repo, copy, symlinks=True)
    proposal = snapshots.snapshots_dir() / snap.id / "proposal.diff"
    subprocess.run(["git", "apply", str(proposal)], cwd=copy, check=True)
    for path in ("lib.py", "added.txt", "crlf.txt", "old_name.txt", "image.png"):
        assert (copy / path).read_bytes() == (tree / path).read_bytes()
    assert not (copy / "notes.md").exists() and os.access(copy / "app.py", os.X_OK)
    assert "GIT binary patch" not in changes.diff and "Binary files" in changes.diff
    assert snapshots.apply_hint(snap.id) == f"git -C {dirty_repo} apply {proposal}"


def test_a_rename_is_reported_as_one(git_repo: Path,
                                     snap_cleanup: list[snapshots.Snapshot]) -> None:
    text = "".join(f"line {i} of a long enough file\n" for i in range(30))
    (git_repo / "before.txt").write_text(text)
    git(git_repo, "add", ".")
    git(git_repo, "commit", "-q", "-m", "file")
    snap = create_snapshot(git_repo)
    snap_cleanup.append(snap)
    (snap.cwd / "before.txt").rename(snap.cwd / "after.txt")
    (files,) = [snap.collect().files]
    assert len(files) == 1
    assert (files[0].status, files[0].path, files[0].old_path) == ("renamed", "after.txt",
                                                                   "before.txt")
    assert files[0].new_text == text == files[0].old_text


def test_base_text_gives_the_snapshot_version_of_a_path(
        dirty_repo: Path, snap_cleanup: list[snapshots.Snapshot]) -> None:
    snap = create_snapshot(dirty_repo, {"lib.py": "unsaved\n"})
    snap_cleanup.append(snap)
    (snap.cwd / "lib.py").write_text("edited by the job\n")
    found = open_snapshot(snap.id)
    assert found is not None
    assert found.base_text("lib.py") == "unsaved\n"
    assert found.base_text("app.py") == "GREETING = 'unstaged'\n"
    assert found.base_text("gone.txt") is None and found.base_text("nope") is None
    assert found.user_path("lib.py") == dirty_repo / "lib.py"


def test_non_ascii_and_spaces_in_paths(tmp_path: Path,
                                       snap_cleanup: list[snapshots.Snapshot]) -> None:
    repo = make_repo(tmp_path / "mein Projekt ü", {"dätei mit leerzeichen.txt": "alt\n"})
    (repo / "neu 日本.txt").write_text("untracked\n")
    snap = create_snapshot(repo, {"dätei mit leerzeichen.txt": "buffer\n"})
    snap_cleanup.append(snap)
    assert (snap.cwd / "neu 日本.txt").read_text() == "untracked\n"
    assert (snap.cwd / "dätei mit leerzeichen.txt").read_text() == "buffer\n"
    (snap.cwd / "dätei mit leerzeichen.txt").write_text("neu\n")
    (change,) = snap.collect().files
    assert change.path == "dätei mit leerzeichen.txt" and change.old_text == "buffer\n"


def test_a_workspace_below_the_repository_root(git_repo: Path,
                                               snap_cleanup: list[snapshots.Snapshot]) -> None:
    sub = git_repo / "pkg"
    sub.mkdir()
    (sub / "mod.py").write_text("A = 1\n")
    git(git_repo, "add", ".")
    git(git_repo, "commit", "-q", "-m", "pkg")
    snap = create_snapshot(sub, {"mod.py": "A = 2\n"})
    snap_cleanup.append(snap)
    assert snap.cwd.name == "pkg" and (snap.cwd / "mod.py").read_text() == "A = 2\n"
    (snap.cwd / "mod.py").write_text("A = 3\n")
    (snap.cwd.parent / "app.py").write_text("outside the workspace\n")
    paths = {c.path for c in snap.collect().files}
    assert paths == {"mod.py", "../app.py"}
    assert snap.base_text("mod.py") == "A = 2\n"


def test_a_repository_without_commits(tmp_path: Path,
                                      snap_cleanup: list[snapshots.Snapshot]) -> None:
    repo = tmp_path / "fresh"
    repo.mkdir()
    git(repo, "init", "-q")
    (repo / "a.txt").write_text("a\n")
    snap = create_snapshot(repo)
    snap_cleanup.append(snap)
    assert (snap.cwd / "a.txt").read_text() == "a\n"
    (snap.cwd / "a.txt").write_text("b\n")
    assert [c.status for c in snap.collect().files] == ["modified"]


def test_a_workspace_that_is_not_a_git_repository(tmp_path: Path,
                                                  snap_cleanup: list[snapshots.Snapshot]) -> None:
    plain = tmp_path / "plain"
    (plain / "src").mkdir(parents=True)
    (plain / "src" / "main.c").write_text("int main(){}\n")
    (plain / ".gitignore").write_text("node_modules/\n")
    (plain / "node_modules" / "dep").mkdir(parents=True)
    (plain / "node_modules" / "dep" / "index.js").write_text("ignored\n")
    os.symlink("src/main.c", plain / "link.c")
    before = fingerprint(plain)
    snap = create_snapshot(plain, {"src/main.c": "int main(){return 1;}\n"})
    snap_cleanup.append(snap)
    assert snap.kind == "copy" and not (snap.cwd / ".git").exists()
    assert (snap.cwd / "src" / "main.c").read_text() == "int main(){return 1;}\n"
    assert os.readlink(snap.cwd / "link.c") == "src/main.c"
    assert not (snap.cwd / "node_modules").exists()
    (snap.cwd / "src" / "util.c").write_text("void u(){}\n")
    changes = snap.collect()
    assert [(c.path, c.status) for c in changes.files] == [("src/util.c", "added")]
    assert fingerprint(plain) == before


def test_a_non_git_workspace_over_the_size_cap_is_a_clear_error(tmp_path: Path) -> None:
    plain = tmp_path / "huge"
    plain.mkdir()
    (plain / "data.bin").write_bytes(b"x" * 3 * 1024 * 1024)
    with pytest.raises(WorkspaceError) as info:
        create_snapshot(plain, max_bytes=2 * 1024 * 1024)
    assert "too large to snapshot" in info.value.message and "2 MB" in info.value.message
    assert ".gitignore" in info.value.hint and "apply=direct" in info.value.hint


def test_refreshing_for_the_next_turn_keeps_edits_and_takes_the_users_changes(
        git_repo: Path, snap_cleanup: list[snapshots.Snapshot]) -> None:
    (git_repo / "b.py").write_text("B = 1\n")
    git(git_repo, "add", ".")
    git(git_repo, "commit", "-q", "-m", "b")
    first = create_snapshot(git_repo)
    snap_cleanup.append(first)
    (first.cwd / "app.py").write_text("GREETING = 'turn one'\n")
    assert [c.path for c in first.collect().files] == ["app.py"]
    first.release()
    # meanwhile the user edits another file and opens an unsaved buffer
    (git_repo / "b.py").write_text("B = 2  # user\n")
    second = create_snapshot(git_repo, {"new.py": "N = 1\n"}, snapshot_id=first.id)
    assert second.cwd == first.cwd
    assert (second.cwd / "app.py").read_text() == "GREETING = 'turn one'\n"
    assert (second.cwd / "b.py").read_text() == "B = 2  # user\n"
    assert (second.cwd / "new.py").read_text() == "N = 1\n"
    (second.cwd / "b.py").write_text("B = 3\n")
    changes = second.collect()
    by_path = {c.path: c for c in changes.files}
    # relative to what the user has now: the unapplied turn-one edit is still proposed
    assert set(by_path) == {"app.py", "b.py"}
    assert by_path["b.py"].old_text == "B = 2  # user\n"
    assert by_path["app.py"].old_text == "GREETING = 'hello'\n"
    # the user applies the proposal; the next turn proposes nothing that is already there
    second.release()
    (git_repo / "app.py").write_text("GREETING = 'turn one'\n")
    (git_repo / "b.py").write_text("B = 3\n")
    third = create_snapshot(git_repo, snapshot_id=first.id)
    assert third.collect().files == ()
    assert "MM" not in git(third.cwd, "status", "--porcelain")


def test_a_refresh_follows_a_commit_that_left_the_files_as_they_were(
        git_repo: Path, snap_cleanup: list[snapshots.Snapshot]) -> None:
    (git_repo / "app.py").write_text("GREETING = 'uncommitted'\n")
    first = create_snapshot(git_repo)
    snap_cleanup.append(first)
    assert git(first.cwd, "status", "--porcelain") == " M app.py\n"
    first.release()
    git(git_repo, "commit", "-q", "-am", "the user commits what the snapshot already has")
    again = create_snapshot(git_repo, snapshot_id=first.id)
    assert git(again.cwd, "rev-parse", "HEAD") == git(git_repo, "rev-parse", "HEAD")
    assert git(again.cwd, "status", "--porcelain") == ""
    assert again.collect().files == ()
    git(git_repo, "checkout", "-q", "-b", "topic")
    again.release()
    third = create_snapshot(git_repo, snapshot_id=first.id)
    assert git(third.cwd, "rev-parse", "--abbrev-ref", "HEAD") == "topic\n"


def test_a_refresh_never_deletes_through_a_link_the_job_left_in_its_tree(
        git_repo: Path, tmp_path: Path, snap_cleanup: list[snapshots.Snapshot]) -> None:
    (git_repo / "src").mkdir()
    (git_repo / "src" / "old.py").write_text("OLD = 1\n")
    git(git_repo, "add", ".")
    git(git_repo, "commit", "-q", "-m", "src")
    first = create_snapshot(git_repo)
    snap_cleanup.append(first)
    outside = tmp_path / "outside"
    outside.mkdir()
    (outside / "old.py").write_text("the user's other file\n")
    shutil.rmtree(first.cwd / "src")  # what a job could do in its tree
    (first.cwd / "src").symlink_to(outside)
    first.release()
    (git_repo / "src" / "old.py").unlink()  # meanwhile the user deletes the file
    again = create_snapshot(git_repo, snapshot_id=first.id)
    assert (outside / "old.py").read_text() == "the user's other file\n"
    assert again.cwd == first.cwd


def test_git_on_the_host_never_runs_what_a_job_wrote_into_its_snapshots_git_config(
        git_repo: Path, tmp_path: Path, snap_cleanup: list[snapshots.Snapshot]) -> None:
    marker = tmp_path / "ran-on-the-host"
    snap = create_snapshot(git_repo)
    snap_cleanup.append(snap)
    evil = tmp_path / "evil-common"  # a config git would read through .git/commondir
    evil.mkdir()
    (evil / "config").write_text(f'[core]\n\tfsmonitor = "touch {marker}; false"\n')
    (snap.git_dir / "commondir").write_text(f"{evil}\n")
    with (snap.git_dir / "config").open("a") as config:  # what a job could do in its tree
        config.write(f'[core]\n\tfsmonitor = "touch {marker}; false"\n'
                     f'[filter "x"]\n\tclean = "touch {marker}; cat"\n')
    (snap.cwd / ".gitattributes").write_text("* filter=x\n")
    (snap.cwd / "app.py").write_text("GREETING = 'job'\n")
    changed = {c.path for c in snap.collect().files}
    assert changed == {"app.py", ".gitattributes"}
    snap.release()
    with (snap.git_dir / "config").open("a") as config:
        config.write(f'[core]\n\tfsmonitor = "touch {marker}; false"\n')
    again = create_snapshot(git_repo, snapshot_id=snap.id)  # the next turn's refresh
    assert again.base_text("app.py") == "GREETING = 'hello'\n"
    assert not marker.exists()
    again.release()
    (snap.git_dir / "HEAD").unlink()
    os.mkfifo(snap.git_dir / "HEAD")  # would make git on the host wait forever
    with pytest.raises(WorkspaceError, match="git directory"):
        snap.collect()


def test_a_missing_session_snapshot_is_recreated_at_the_same_path(
        git_repo: Path, snap_cleanup: list[snapshots.Snapshot]) -> None:
    first = create_snapshot(git_repo, snapshot_id="snap-session-test")
    path = first.cwd
    assert first.discard()
    again = create_snapshot(git_repo, snapshot_id="snap-session-test")
    snap_cleanup.append(again)
    assert again.cwd == path and (path / "app.py").is_file()


def test_discard_and_expiry_spare_a_snapshot_in_use(git_repo: Path) -> None:
    in_use = create_snapshot(git_repo)
    idle = create_snapshot(git_repo)
    idle.release()
    old = time.time() - 8 * 24 * 3600
    for snap in (in_use, idle):
        meta = read_json(snap.root / "meta.json")
        meta["lastUsed"] = old
        write_json(snap.root / "meta.json", meta)
    removed = snapshots.reap_expired()
    assert idle.id in removed and not idle.root.exists()
    assert in_use.id not in removed and in_use.root.exists()
    assert discard(in_use.id) is False
    in_use.release()
    assert discard(in_use.id) is True and open_snapshot(in_use.id) is None
    assert discard(in_use.id) is False and discard("../../etc") is False


def test_a_spare_is_taken_and_brought_up_to_date(git_repo: Path) -> None:
    spare = snapshots.prepare_spare(git_repo)
    assert spare is not None and snapshots.prepare_spare(git_repo) == spare
    (git_repo / "app.py").write_text("GREETING = 'after the spare'\n")
    (git_repo / "late.txt").write_text("late\n")
    snap = create_snapshot(git_repo, {"buf.txt": "buffer\n"})
    try:
        assert snap.id == spare
        assert (snap.cwd / "app.py").read_text() == "GREETING = 'after the spare'\n"
        assert (snap.cwd / "late.txt").read_text() == "late\n"
        assert (snap.cwd / "buf.txt").read_text() == "buffer\n"
        assert sorted(git(snap.cwd, "status", "--porcelain").splitlines()) == [
            " M app.py", "?? buf.txt", "?? late.txt"]
        (snap.cwd / "app.py").write_text("GREETING = 'job'\n")
        (change,) = snap.collect().files
        assert change.old_text == "GREETING = 'after the spare'\n"
    finally:
        snap.discard()
    for thread in threading.enumerate():
        if thread.name == "channelcoder-spare-snapshot":
            thread.join(timeout=30)
    following = create_snapshot(git_repo)
    try:
        assert following.id not in (spare, None)
        assert (following.cwd / "app.py").read_text() == "GREETING = 'after the spare'\n"
        assert not (following.cwd / "buf.txt").exists()
    finally:
        following.discard()
