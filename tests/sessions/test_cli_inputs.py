"""Bad input to the session, worktree and prompt-file flags: one error line with a hint, no traceback."""

from __future__ import annotations

import io
from pathlib import Path

import pytest

from channelcoder.cli.main import main


def run(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str, str]:
    code = main(list(argv))
    captured = capsys.readouterr()
    return code, captured.out, captured.err


def assert_error(code: int, err: str, expected_code: int, needle: str) -> None:
    assert code == expected_code, err
    lines = err.strip().splitlines()
    assert lines[0].startswith("error: ") and needle in lines[0], err
    assert lines[1].strip().startswith("hint: ") and "Traceback" not in err


def test_prompt_and_data_cannot_both_come_from_stdin(
        capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr("sys.stdin", io.StringIO("{}"))
    code, _, err = run(capsys, "run", "--data-stdin", "-")
    assert_error(code, err, 2, "cannot both come from stdin")


def test_data_stdin_must_be_a_json_object(capsys: pytest.CaptureFixture[str],
                                          monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr("sys.stdin", io.StringIO("[1, 2]"))
    code, _, err = run(capsys, "run", "--data-stdin", "-p", "x {a}")
    assert code == 2 and "must hold a JSON object" in err


def test_an_inline_prompt_with_an_unknown_variable(capsys: pytest.CaptureFixture[str],
                                                   tmp_path: Path) -> None:
    code, _, err = run(capsys, "run", "-C", str(tmp_path), "-p", "Fix {fiel}", "-d", "file=a.py")
    assert_error(code, err, 2, "uses {fiel} but no value was given")


def test_a_prompt_file_with_an_unknown_key(capsys: pytest.CaptureFixture[str],
                                           tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    (tmp_path / "p.md").write_text("---\nallowedTool: [Read]\n---\nGo\n")
    monkeypatch.chdir(tmp_path)
    code, _, err = run(capsys, "run", "p.md")
    assert_error(code, err, 2, "unknown option 'allowedTool'")


def test_rm_worktree_needs_a_worktree(capsys: pytest.CaptureFixture[str]) -> None:
    code, _, err = run(capsys, "run", "--rm-worktree", "hi")
    assert code == 2 and "--worktree BRANCH" in err


def test_showing_a_missing_session(capsys: pytest.CaptureFixture[str]) -> None:
    code, _, err = run(capsys, "sessions", "show", "never-made")
    assert_error(code, err, 1, "no session named 'never-made'")


def test_sessions_ls_with_none(capsys: pytest.CaptureFixture[str],
                              monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("CHANNELCODER_STATE_DIR", str(tmp_path / "empty-state"))
    code, out, _ = run(capsys, "sessions")
    assert code == 0 and "no sessions yet" in out
