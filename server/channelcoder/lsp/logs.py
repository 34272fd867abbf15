"""The server's logging: a rotated file under the state dir, stderr for warnings, and warnings
forwarded to the editor as `window/logMessage`. One redaction filter covers every handler.

pygls logs whole messages at INFO (settings, document text), so its loggers stay at WARNING
whatever the level.
"""

from __future__ import annotations

import logging
import logging.handlers
import os
import threading
from collections.abc import Callable
from pathlib import Path

from ..redact import RedactingFilter, register_env

LEVELS = {"debug": logging.DEBUG, "info": logging.INFO, "warning": logging.WARNING,
          "error": logging.ERROR}
FORMAT = "%(asctime)s %(process)d %(levelname)s %(name)s: %(message)s"
MAX_BYTES = 2 * 1024 * 1024
BACKUPS = 3

_state = threading.local()
_file_handler: logging.Handler | None = None
_log_path: Path | None = None


def default_log_file() -> Path:
    from ..state import subdir

    return subdir("logs") / "lsp.log"


def log_file() -> Path | None:
    return _log_path


def setup(level: str = "warning", path: Path | None = None) -> Path:
    """Configure logging for a server process; returns the log file's path."""
    global _file_handler, _log_path
    register_env(dict(os.environ))
    target = path or default_log_file()
    try:
        target.parent.mkdir(parents=True, exist_ok=True)
        file_handler = logging.handlers.RotatingFileHandler(target, maxBytes=MAX_BYTES,
                                                            backupCount=BACKUPS, encoding="utf-8")
    except OSError as exc:
        from ..errors import UsageError

        raise UsageError(f"cannot write the log file {target}: {exc.strerror or exc}",
                         hint="pass a writable --log-file PATH") from None
    root = logging.getLogger()
    for handler in list(root.handlers):
        root.removeHandler(handler)
    file_handler.setFormatter(logging.Formatter(FORMAT))
    file_handler.addFilter(RedactingFilter())
    root.addHandler(file_handler)
    stderr = logging.StreamHandler()
    stderr.setLevel(logging.WARNING)
    stderr.setFormatter(logging.Formatter("channelcoder-lsp %(levelname)s %(name)s: %(message)s"))
    stderr.addFilter(RedactingFilter())
    root.addHandler(stderr)
    _file_handler, _log_path = file_handler, target
    set_level(level)
    return target


def set_level(level: str) -> None:
    value = LEVELS.get(level.lower(), logging.WARNING)
    logging.getLogger().setLevel(value)
    logging.getLogger("channelcoder").setLevel(value)
    for name in ("pygls", "pygls.protocol", "pygls.server", "pygls.feature_manager"):
        logging.getLogger(name).setLevel(logging.WARNING)
    rpc = logging.getLogger("pygls.protocol.json_rpc")
    if not any(isinstance(f, ExpectedRpcErrors) for f in rpc.filters):
        rpc.addFilter(ExpectedRpcErrors())
    logging.getLogger("docker").setLevel(max(value, logging.INFO))
    logging.getLogger("urllib3").setLevel(max(value, logging.INFO))


class ExpectedRpcErrors(logging.Filter):
    """pygls logs every error reply with a traceback; bad input is not worth one."""

    def filter(self, record: logging.LogRecord) -> bool:
        if record.exc_info and record.exc_info[1] is not None:
            from pygls.exceptions import JsonRpcException

            error = record.exc_info[1]
            if isinstance(error, JsonRpcException) and error.code in (-32602, -32803, -32800):
                return False
        return True


class EditorLogHandler(logging.Handler):
    """Forwards warnings and errors to the client (never recursively)."""

    def __init__(self, send: Callable[[int, str], None]) -> None:
        super().__init__(logging.WARNING)
        self._send = send
        self.addFilter(RedactingFilter())

    def emit(self, record: logging.LogRecord) -> None:
        if getattr(_state, "busy", False) or record.name.startswith("pygls"):
            return
        _state.busy = True
        try:
            self._send(record.levelno, f"{record.name}: {record.getMessage()}")
        except Exception:
            pass
        finally:
            _state.busy = False


def forward_to_editor(send: Callable[[int, str], None]) -> EditorLogHandler:
    handler = EditorLogHandler(send)
    logging.getLogger("channelcoder").addHandler(handler)
    return handler
