"""The JSON-RPC protocol with the fixes the server needs on top of pygls 2.1.

- `workspace/executeCommand` awaits the command *inside* the request's own task, so
  `$/cancelRequest` cancels the command itself (pygls runs it as a separate task that a cancel
  never reaches). Arguments: none, or exactly one object.
- Errors become JSON-RPC errors with a hint (`data: {code, hint}`), never a traceback.
- A request whose params cannot even be parsed gets an InvalidParams reply instead of silence.
- `exit` cleans up (jobs, containers) before the process ends.
"""

from __future__ import annotations

import asyncio
import contextvars
import inspect
import logging
import sys
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

from lsprotocol import types
from pygls.exceptions import JsonRpcException, JsonRpcInvalidParams
from pygls.protocol import LanguageServerProtocol, lsp_method

from ..errors import ChannelCoderError, UsageError
from ..redact import redact

if TYPE_CHECKING:
    from .server import ChannelCoderServer

log = logging.getLogger(__name__)

INVALID_PARAMS = -32602
REQUEST_FAILED = -32803
METHOD_NOT_FOUND = -32601

current_params: contextvars.ContextVar[types.ExecuteCommandParams | None] = \
    contextvars.ContextVar("current_params", default=None)


class _Handled:
    """A message already answered while parsing it; `handle_message` drops it."""

    jsonrpc = "handled"


def rpc_error(exc: ChannelCoderError) -> JsonRpcException:
    code = INVALID_PARAMS if isinstance(exc, UsageError) else REQUEST_FAILED
    message = redact(exc.message + (f" (hint: {exc.hint})" if exc.hint else ""))
    return JsonRpcException(message=message, code=code,
                            data={"code": exc.code, "hint": redact(exc.hint)})


def command_argument(arguments: Any, command: str) -> dict[str, Any]:
    """The one optional object argument of a command."""
    if arguments is None:
        return {}
    if not isinstance(arguments, list | tuple):
        raise UsageError(f"{command}: 'arguments' must be a list")
    if len(arguments) == 0 or (len(arguments) == 1 and arguments[0] is None):
        return {}
    if len(arguments) == 1 and isinstance(arguments[0], Mapping):
        return dict(arguments[0])
    raise UsageError(f"{command} takes at most one argument, an object; got "
                     f"{len(arguments)} argument(s) ({', '.join(_kind(a) for a in arguments[:3])})",
                     hint="pass the options as one object, e.g. [{\"prompt\": \"…\"}]")


def _kind(value: Any) -> str:
    return "null" if value is None else type(value).__name__


class ChannelCoderProtocol(LanguageServerProtocol):
    _server: ChannelCoderServer

    @lsp_method(types.WORKSPACE_EXECUTE_COMMAND)
    async def lsp_workspace__execute_command(  # type: ignore[override]
            self, params: types.ExecuteCommandParams) -> Any:
        handler = self.fm.commands.get(params.command)
        if handler is None:
            known = ", ".join(sorted(self.fm.commands))
            raise JsonRpcException(message=f"unknown command {params.command!r} (known: {known})",
                                   code=INVALID_PARAMS,
                                   data={"code": "usage", "hint": f"use one of {known}"})
        token = current_params.set(params)
        try:
            argument = command_argument(params.arguments, params.command)
            log.debug("%s %s", params.command, redact(repr(argument)[:2000]))
            result = handler(argument)
            if inspect.isawaitable(result):
                result = await result
            return result
        except ChannelCoderError as exc:
            log.info("%s: %s", params.command, exc.describe())
            raise rpc_error(exc) from None
        except (JsonRpcException, asyncio.CancelledError):
            raise
        except Exception as exc:
            log.exception("command %s failed", params.command)
            raise JsonRpcException(message=f"internal error in {params.command}: {exc}",
                                   code=REQUEST_FAILED,
                                   data={"code": "internal",
                                         "hint": "please report this with the log file"}) from None
        finally:
            current_params.reset(token)

    @lsp_method(types.EXIT)
    async def lsp_exit(self, *args: Any) -> None:  # type: ignore[override]
        await self._server.close()
        self._server.exit_code = 0 if self._shutdown else 1
        self._server.stop()

    def structure_message(self, data: dict[str, Any]) -> Any:
        try:
            return super().structure_message(data)
        except JsonRpcException as exc:
            if "id" in data and "method" in data:
                error = JsonRpcInvalidParams(
                    message=f"invalid params for {data.get('method')!r}: {exc}")
                self._send_response(data["id"], error=error.to_response_error())
            log.warning("dropped a malformed message for %r", data.get("method"))
            return _Handled()

    def handle_message(self, message: Any) -> None:
        if isinstance(message, _Handled):
            return
        super().handle_message(message)


def stderr_print(text: str) -> None:
    """For the rare message that must reach a human before logging exists."""
    sys.stderr.write(redact(text) + "\n")
    sys.stderr.flush()
