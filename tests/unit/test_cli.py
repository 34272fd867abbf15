"""The CLI's bad-input handling: one error line with a hint, exit code 2, no traceback."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from channelcoder.cli.main import main


def run_cli(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str]:
    code = main(list(argv))
    return code, capsys.readouterr().err


def assert_usage_error(code: int, err: str, needle: str) -> None:
    assert code == 2, err
    lines = err.strip().splitlines()
    assert lines[0].startswith("error: ") and needle in lines[0]
    assert len(lines) == 2 and lines[1].strip().startswith("hint: ")
    assert "Traceback" not in err


def test_unknown_flag(capsys: pytest.CaptureFixture[str]) -> None:
    code, err = run_cli(capsys, "run", "--frobnicate", "hi")
    assert_usage_error(code, err, "--frobnicate")


def test_empty_prompt(capsys: pytest.CaptureFixture[str]) -> None:
    code, err = run_cli(capsys, "run", "   ")
    assert_usage_error(code, err, "prompt is empty")
    code, err = run_cli(capsys, "run")
    assert_usage_error(code, err, "prompt is empty")


def test_non_numeric_max_turns(capsys: pytest.CaptureFixture[str]) -> None:
    code, err = run_cli(capsys, "run", "--max-turns", "lots", "hi")
    assert_usage_error(code, err, "positive whole number")


def test_unreadable_mcp_config(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    code, err = run_cli(capsys, "run", "-C", str(tmp_path), "--mcp-config", "nope.json", "hi")
    assert_usage_error(code, err, "nope.json")
    (tmp_path / "bad.json").write_text("{not json")
    code, err = run_cli(capsys, "run", "-C", str(tmp_path), "--mcp-config", "bad.json", "hi")
    assert_usage_error(code, err, "not valid JSON")


def test_missing_claude_binary_names_the_install_command(
        capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch,
        tmp_path: Path) -> None:
    monkeypatch.setenv("CHANNELCODER_CLAUDE", str(tmp_path / "missing-claude"))
    code, err = run_cli(capsys, "run", "-C", str(tmp_path), "hi")
    assert_usage_error(code, err, "missing-claude")
    assert "npm install -g @anthropic-ai/claude-code" in err


def test_inline_prompt_and_positional_prompt_conflict(capsys: pytest.CaptureFixture[str]) -> None:
    code, err = run_cli(capsys, "run", "-p", "one", "two")
    assert_usage_error(code, err, "give the prompt once")


def test_console_script_exits_2_without_a_traceback() -> None:
    proc = subprocess.run([sys.executable, "-m", "channelcoder", "run", "--max-turns", "x", "y"],
                          capture_output=True, text=True, timeout=60)
    assert proc.returncode == 2 and "Traceback" not in proc.stderr


def test_keep_warm_takes_seconds_and_zero_turns_it_off(capsys: pytest.CaptureFixture[str]) -> None:
    from channelcoder.cli.main import build_parser, run_layer

    args = build_parser().parse_args(["run", "--session", "s", "--keep-warm", "0", "hi"])
    assert run_layer(args)["docker"] == {"keep_warm": 0.0}
    code, err = run_cli(capsys, "run", "--keep-warm", "-5", "hi")
    assert_usage_error(code, err, "--keep-warm expects a number ≥ 0")
