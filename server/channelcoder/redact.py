"""One redaction filter for logs, errors and --verbose output.

Secret values are registered as they are read (API keys, tokens, Docker env values, inline MCP
config); `redact()` replaces every registered value and anything that looks like a key.
`install_log_filter()` applies the same rule to every log record.
"""

from __future__ import annotations

import logging
import re
import threading
from collections.abc import Iterable, Mapping

MASK = "***"
SECRET_ENV_NAMES = ("ANTHROPIC_API_KEY", "CLAUDE_CODE_OAUTH_TOKEN", "ANTHROPIC_AUTH_TOKEN")
_SECRET_NAME = re.compile(r"(KEY|TOKEN|SECRET|PASSWORD|PASSWD|CREDENTIAL|AUTH)", re.IGNORECASE)
_NAMES_NOT_SECRET = re.compile(r"GIT_CONFIG_KEY_\d+")  # a git setting's name, e.g. safe.directory
_PATTERNS = [
    re.compile(r"()sk-ant-[A-Za-z0-9_\-]{8,}"),
    re.compile(r"(?i)(bearer\s+)[A-Za-z0-9._\-]{8,}"),
    re.compile(r"(?i)\b(?!GIT_CONFIG_KEY_\d+=)([A-Z0-9_]*(?:KEY|TOKEN|SECRET|PASSWORD)[A-Z0-9_]*=)"
               r"(\S+)"),
    re.compile(r"(?i)(\b[a-z][a-z0-9+.\-]*://[^\s:/@]+:)[^\s/@]+(?=@)"),  # a URL's password
]
_MIN_SECRET = 4

_lock = threading.Lock()
_secrets: set[str] = set()


def register_secret(value: str | None) -> None:
    if value and len(value) >= _MIN_SECRET:
        with _lock:
            _secrets.add(value)


def register_env(env: Mapping[str, str], *, all_values: bool = False) -> None:
    """Register env values: all of them (Docker `env`), or those whose names look secret."""
    for name, value in env.items():
        if all_values or name in SECRET_ENV_NAMES or (
                _SECRET_NAME.search(name) and not _NAMES_NOT_SECRET.fullmatch(name)):
            register_secret(value)


def redact(text: str) -> str:
    with _lock:
        secrets = sorted(_secrets, key=len, reverse=True)
    for secret in secrets:
        if secret in text:
            text = text.replace(secret, MASK)
    for pattern in _PATTERNS:
        text = pattern.sub(lambda m: m.group(1) + MASK, text)
    return text


def redact_all(parts: Iterable[str]) -> list[str]:
    return [redact(p) for p in parts]


class RedactingFilter(logging.Filter):
    def filter(self, record: logging.LogRecord) -> bool:
        try:
            message = record.getMessage()
        except Exception:
            return True
        clean = redact(message)
        if clean != message or record.args:
            record.msg, record.args = clean, None
        return True


def install_log_filter(handler: logging.Handler) -> None:
    if not any(isinstance(f, RedactingFilter) for f in handler.filters):
        handler.addFilter(RedactingFilter())
