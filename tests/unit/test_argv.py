"""RunOptions -> claude argv, for every option that maps to a CLI flag."""

from __future__ import annotations

import pytest

from channelcoder.claude.argv import BASE_FLAGS, build_argv, child_env, format_command, tool_names
from channelcoder.config import RunOptions, build_options
from channelcoder.redact import register_secret


def argv_for(prompt: str | None = "do it", **options: object) -> list[str]:
    return build_argv(build_options(options), prompt)


def test_always_headless_stream_json_and_prompt_last() -> None:
    argv = argv_for()
    assert argv[0] == "claude"
    assert argv[1:5] == list(BASE_FLAGS)
    assert argv[-2:] == ["--", "do it"]


@pytest.mark.parametrize("prompt", [
    'say "hi" and \'bye\'', "line one\nline two", "--help", "-v fix it", "", "ünïcödé ✓",
])
def test_prompt_is_one_argument_after_double_dash(prompt: str) -> None:
    argv = argv_for(prompt)
    assert argv[-2] == "--"
    assert argv[-1] == prompt
    assert argv.count(prompt) == 1 or prompt in BASE_FLAGS


@pytest.mark.parametrize(("options", "expected"), [
    ({"model": "sonnet"}, ["--model", "sonnet"]),
    ({"max_turns": 3}, ["--max-turns", "3"]),
    ({"permission_mode": "plan"}, ["--permission-mode", "plan"]),
    ({"system": "be brief"}, ["--system-prompt", "be brief"]),
    ({"append_system": "use tabs"}, ["--append-system-prompt", "use tabs"]),
    ({"resume": "abc-123"}, ["--resume", "abc-123"]),
    ({"continue_": True}, ["--continue"]),
    ({"mcp_config": '{"mcpServers": {}}'}, ["--mcp-config", '{"mcpServers": {}}']),
    ({"add_dirs": ["/extra"]}, ["--add-dir", "/extra"]),
    ({"disallowed_tools": "WebFetch, Bash(rm:*)"}, ["--disallowedTools", "WebFetch", "Bash(rm:*)"]),
])
def test_each_option_maps_to_its_flag(options: dict[str, object], expected: list[str]) -> None:
    argv = argv_for(**options)
    start = argv.index(expected[0])
    assert argv[start : start + len(expected)] == expected


def test_tools_make_others_unavailable_and_allow_the_rules() -> None:
    argv = argv_for(tools=["Read", "Bash(git log:*)", "Edit"])
    assert argv[argv.index("--tools") + 1] == "Read,Bash,Edit"
    allowed = argv.index("--allowedTools")
    assert argv[allowed + 1 : allowed + 4] == ["Read", "Bash(git log:*)", "Edit"]


def test_empty_tools_disable_every_tool() -> None:
    argv = build_argv(RunOptions(tools=()), "x")
    assert argv[argv.index("--tools") + 1] == ""
    assert "--allowedTools" not in argv


def test_resume_wins_over_continue() -> None:
    argv = argv_for(resume="id-1", continue_=True)
    assert "--resume" in argv and "--continue" not in argv


def test_sandbox_defaults_to_bypass_permissions_but_explicit_mode_wins() -> None:
    assert "bypassPermissions" in build_argv(RunOptions(), "x", sandboxed=True)
    assert "--permission-mode" not in build_argv(RunOptions(), "x")
    argv = build_argv(RunOptions(permission_mode="plan"), "x", sandboxed=True)
    assert argv[argv.index("--permission-mode") + 1] == "plan"


def test_live_mode_reads_turns_from_stdin() -> None:
    argv = build_argv(RunOptions(), None, live=True)
    assert argv[argv.index("--input-format") + 1] == "stream-json"
    assert "--" not in argv


def test_partial_messages_can_be_turned_off() -> None:
    assert "--include-partial-messages" in argv_for()
    assert "--include-partial-messages" not in argv_for(partial_messages=False)


def test_tool_names_strip_rule_arguments() -> None:
    assert tool_names(["Bash(npm run test:*)", "mcp__github__get_issue", "Read", "Read"]) == [
        "Bash", "mcp__github__get_issue", "Read"]


def test_child_env_scrubs_parent_claude_session() -> None:
    env = child_env({"CLAUDECODE": "1", "CLAUDE_CODE_ENTRYPOINT": "cli", "PATH": "/bin"})
    assert "CLAUDECODE" not in env and "CLAUDE_CODE_ENTRYPOINT" not in env
    assert env["PATH"] == "/bin" and env["DISABLE_AUTOUPDATER"] == "1"


def test_verbose_command_line_redacts_secrets() -> None:
    register_secret("super-secret-value-42")
    line = format_command(["claude", "-p", "--", "x"],
                          {"ANTHROPIC_API_KEY": "sk-ant-api03-abcdefghijkl", "X": "super-secret-value-42"})
    assert "sk-ant-api03-abcdefghijkl" not in line
    assert "super-secret-value-42" not in line
    assert "ANTHROPIC_API_KEY=***" in line
