"""One exception hierarchy. Every error carries a message and a hint for the user.

`code` is a stable, machine-readable name (used in `Error` events, the LSP and `--json`).
`exit_code` is what the CLI exits with: 2 for bad usage, 1 for a failed run.
"""

from __future__ import annotations


class ChannelCoderError(Exception):
    code = "error"
    exit_code = 1
    default_hint = ""

    def __init__(self, message: str, hint: str | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.hint = self.default_hint if hint is None else hint

    def __str__(self) -> str:
        return self.message

    def describe(self) -> str:
        """The message with its hint, as shown to a user."""
        return f"{self.message}\n  hint: {self.hint}" if self.hint else self.message


class UsageError(ChannelCoderError):
    """Bad input from the user: a flag, an option, a setting, a prompt."""

    code = "usage"
    exit_code = 2


class ConfigError(UsageError):
    code = "config"


class PromptError(UsageError):
    code = "prompt"


class ClaudeNotFound(ChannelCoderError):
    code = "claude-not-found"
    exit_code = 2
    default_hint = "run 'make setup', or install it: npm install -g @anthropic-ai/claude-code"


class ClaudeFailed(ChannelCoderError):
    """The CLI ran but the run failed (API error, non-zero exit, bad output)."""

    code = "claude-failed"


class AuthenticationFailed(ClaudeFailed):
    code = "auth"
    default_hint = (
        "set ANTHROPIC_API_KEY or CLAUDE_CODE_OAUTH_TOKEN, or run 'claude' once and /login"
    )


class Cancelled(ChannelCoderError):
    code = "cancelled"


class TimedOut(ChannelCoderError):
    code = "timeout"
    default_hint = "raise the limit with --timeout SECONDS (option 'timeout')"


class IdleTimeout(TimedOut):
    code = "idle-timeout"
    default_hint = "the CLI printed nothing for too long; raise 'idle_timeout' if this is expected"


class DockerUnavailable(ChannelCoderError):
    code = "docker-unavailable"
    default_hint = (
        "start Docker (or run 'make engine'), check DOCKER_HOST, "
        "or run without --docker to use the host's claude"
    )


class ImageError(ChannelCoderError):
    code = "image"


class BuildFailed(ImageError):
    code = "build-failed"


class PullFailed(ImageError):
    code = "pull-failed"


class SandboxError(ChannelCoderError):
    code = "sandbox"


class OutOfMemory(SandboxError):
    code = "out-of-memory"
    default_hint = "raise the limit with --memory (DockerOptions.memory)"


class GitError(ChannelCoderError):
    code = "git"


class WorkspaceError(ChannelCoderError):
    code = "workspace"


class SessionError(ChannelCoderError):
    code = "session"


class NotTrusted(ChannelCoderError):
    code = "untrusted"
    default_hint = "trust this workspace first: 'channelcoder trust' (or accept the editor's prompt)"
