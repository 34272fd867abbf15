"""RunOptions -> the Claude Code CLI's argv. The only module that knows the CLI's flags.

The prompt always comes last, after ``--``, so a prompt that starts with a dash, or follows a
variadic flag such as ``--allowedTools``, is never read as an option.
"""

from __future__ import annotations

import re
import shlex
from collections.abc import Mapping, Sequence

from ..config import RunOptions
from ..redact import redact

BASE_FLAGS = ("-p", "--output-format", "stream-json", "--verbose")
SANDBOX_PERMISSION_MODE = "bypassPermissions"
_RULE_NAME = re.compile(r"^([A-Za-z0-9_\-]+|mcp__[^(\s]+)")

# Environment a child claude must not inherit from a parent Claude Code session.
SCRUBBED_ENV = ("CLAUDECODE", "CLAUDE_CODE_ENTRYPOINT", "CLAUDE_CODE_SSE_PORT")
QUIET_ENV = {"DISABLE_AUTOUPDATER": "1", "CLAUDE_CODE_DISABLE_NONESSENTIAL_TRAFFIC": "1"}


def tool_names(rules: Sequence[str]) -> list[str]:
    """'Bash(git log:*)' -> 'Bash': the tool a rule is about, for --tools."""
    names: list[str] = []
    for rule in rules:
        match = _RULE_NAME.match(rule.strip())
        name = match.group(1) if match else rule.strip()
        if name and name not in names:
            names.append(name)
    return names


def build_argv(
    options: RunOptions,
    prompt: str | None,
    *,
    claude: str = "claude",
    sandboxed: bool = False,
    live: bool = False,
    system: str | None = None,
    append_system: str | None = None,
    resume: str | None = None,
) -> list[str]:
    """The argv for one run. `prompt` is None in live-process mode (turns come on stdin).

    `system` / `append_system` / `resume` override the options' values (callers pass resolved
    prompt-file contents and the session's last id).
    """
    argv = [claude, *BASE_FLAGS]
    if live:
        argv += ["--input-format", "stream-json"]
    if options.partial_messages:
        argv.append("--include-partial-messages")
    if options.model:
        argv += ["--model", options.model]
    if options.max_turns is not None:
        argv += ["--max-turns", str(options.max_turns)]
    mode = options.permission_mode or (SANDBOX_PERMISSION_MODE if sandboxed else None)
    if mode:
        argv += ["--permission-mode", mode]
    system_text = system if system is not None else options.system
    if system_text:
        argv += ["--system-prompt", system_text]
    append_text = append_system if append_system is not None else options.append_system
    if append_text:
        argv += ["--append-system-prompt", append_text]
    resume_id = resume if resume is not None else options.resume
    if resume_id:
        argv += ["--resume", resume_id]
    elif options.continue_:
        argv.append("--continue")
    if options.mcp_config:
        argv += ["--mcp-config", options.mcp_config]
    for directory in options.add_dirs:
        argv += ["--add-dir", directory]
    if options.tools is not None:
        argv += ["--tools", ",".join(tool_names(options.tools)) or ""]
        if options.tools:
            argv += ["--allowedTools", *options.tools]
    if options.disallowed_tools:
        argv += ["--disallowedTools", *options.disallowed_tools]
    if prompt is not None:
        argv += ["--", prompt]
    return argv


def child_env(base: Mapping[str, str], extra: Mapping[str, str] | None = None) -> dict[str, str]:
    """The environment for a host claude: the parent's, scrubbed, plus quiet defaults."""
    env = {k: v for k, v in base.items() if k not in SCRUBBED_ENV}
    for key, value in QUIET_ENV.items():
        env.setdefault(key, value)
    if extra:
        env.update(extra)
    return env


def format_command(argv: Sequence[str], env: Mapping[str, str] | None = None) -> str:
    """A shell-quoted command line for --verbose, with every secret redacted."""
    prefix = [f"{k}={v}" for k, v in (env or {}).items()]
    return redact(shlex.join([*prefix, *argv]))


def user_turn(text: str, session_id: str = "") -> dict[str, object]:
    """One user message for a live process (`--input-format stream-json`)."""
    return {
        "type": "user",
        "message": {"role": "user", "content": text},
        "parent_tool_use_id": None,
        "session_id": session_id,
    }


INTERRUPT = {"type": "control_request", "request_id": "channelcoder-interrupt",
             "request": {"subtype": "interrupt"}}
