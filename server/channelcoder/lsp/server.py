"""The language server: state, lifecycle and LSP features. Commands live in commands.py.

The server stays thin: requests become `jobs.Job`s through `api.build_request`; Docker,
snapshots and sessions are other modules' business. `create_server()` wires the features.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any
from urllib.parse import unquote, urlparse

import anyio
from lsprotocol import types
from pygls.lsp.server import LanguageServer

from ..redact import redact
from . import logs
from .actions import ADVERTISED_KINDS, PROMPTS_DIR, PromptCatalog, code_actions
from .context import EditorContext, Selection
from .offers import Offers
from .protocol import ChannelCoderProtocol
from .runs import LspJob, Runs, StandbyProvider
from .settings import EditorSettings, merge_settings, parse_settings

log = logging.getLogger(__name__)

VERSION = "0.1.0"
CONFIG_SECTION = "channelcoder"
LONG_ANSWER = 300
PROMPT_GLOB = "**/.channelcoder/prompts/*.md"


class ChannelCoderServer(LanguageServer):
    def __init__(self) -> None:
        super().__init__("channelcoder", VERSION, protocol_cls=ChannelCoderProtocol,
                         text_document_sync_kind=types.TextDocumentSyncKind.Incremental)
        self.init_settings = EditorSettings()
        self.config_settings = EditorSettings()
        self.settings = EditorSettings()
        self.runs = Runs(self)
        self.offers = Offers(self)
        self.prompts = PromptCatalog()
        self.standby: StandbyProvider | None = _standby_provider()
        self.last_context: tuple[str, types.Range, list[types.Diagnostic]] | None = None
        self.cancellers: dict[types.ProgressToken, Callable[[], object]] = {}
        self.exit_code = 1
        self.log_level_locked = False
        self._warned: set[str] = set()
        self._tasks: set[asyncio.Task[Any]] = set()
        self._closing: asyncio.Task[None] | None = None
        self._stop: Callable[[], None] | None = None

    # -- helpers used by every module ----------------------------------------------------------

    @property
    def encoding(self) -> str:
        value = self.workspace.position_encoding or types.PositionEncodingKind.Utf16
        return types.PositionEncodingKind(value).value

    def roots(self) -> list[Path]:
        roots: list[Path] = []
        candidates = [self.workspace.root_path] + [
            _uri_path(folder.uri) for folder in self.workspace.folders.values()]
        for candidate in candidates:
            if candidate:
                path = Path(candidate).resolve()
                if path not in roots:
                    roots.append(path)
        return roots

    def default_root(self) -> Path | None:
        roots = self.roots()
        return roots[0] if roots else None

    def show(self, kind: types.MessageType, message: str) -> None:
        try:
            self.window_show_message(types.ShowMessageParams(type=kind, message=redact(message)))
        except Exception as exc:
            log.debug("showMessage failed: %s", exc)

    def log_to_editor(self, kind: types.MessageType, message: str) -> None:
        try:
            self.window_log_message(types.LogMessageParams(type=kind, message=redact(message)))
        except Exception as exc:
            log.debug("logMessage failed: %s", exc)

    def warn_once(self, message: str) -> None:
        if message in self._warned:
            return
        self._warned.add(message)
        log.info("warning shown: %s", message)
        self.show(types.MessageType.Warning, f"channelcoder: {message}")

    def spawn(self, make: Callable[[], Awaitable[Any]]) -> None:
        """Run a coroutine in the background; keep it referenced until it ends."""

        async def guarded() -> None:
            try:
                await make()
            except Exception:
                log.exception("background task failed")

        task = asyncio.get_running_loop().create_task(guarded())
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    def can(self, path: str) -> bool:
        """A client capability by dotted path (e.g. 'window.show_document.support')."""
        value: Any = self.client_capabilities
        for part in path.split("."):
            value = getattr(value, part, None)
            if value is None:
                return False
        return bool(value)

    async def show_document_or_log(self, path: Path, text: str) -> None:
        if self.can("window.show_document.support"):
            try:
                result = await self.window_show_document_async(types.ShowDocumentParams(
                    uri=path.as_uri(), take_focus=True))
                if result is not None and result.success:
                    return
            except Exception as exc:
                log.info("showDocument failed: %s", exc)
        self.log_to_editor(types.MessageType.Info, text)

    def context_for(self, uri: str) -> EditorContext:
        """The remembered selection/diagnostics of the last code-action request on `uri`."""
        if self.last_context is None or self.last_context[0] != uri:
            return EditorContext()
        _, rng, diagnostics = self.last_context
        start, end = (rng.start.line, rng.start.character), (rng.end.line, rng.end.character)
        return EditorContext(selection=Selection(start, end, ""), diagnostics=list(diagnostics))

    def open_documents(self, root: Path) -> list[tuple[Path, str, str, int | None]]:
        """(path, uri, text, version) of every open document under `root`."""
        out: list[tuple[Path, str, str, int | None]] = []
        for uri, document in list(self.workspace.text_documents.items()):
            path = _uri_path(uri)
            if path is None:
                continue
            resolved = Path(path)
            if resolved == root or root in resolved.parents:
                out.append((resolved, document.uri, document.source, document.version))
        return out

    # -- settings ------------------------------------------------------------------------------

    def apply_settings(self) -> None:
        merged = merge_settings(self.init_settings, self.config_settings)
        for warning in merged.warnings:
            self.warn_once(warning)
        previous = self.settings
        self.settings = merged
        self.runs.set_max_jobs(merged.max_jobs)
        if not self.log_level_locked:
            logs.set_level(merged.server.log_level)
        if self.standby is not None and (previous.layer != merged.layer
                                         or previous.server != merged.server):
            root = self.default_root()
            if root is not None and merged.server.standby:
                self.standby.start(root, merged.layer)
            elif not merged.server.standby:
                self.standby.stop()

    async def fetch_configuration(self) -> None:
        if not self.can("workspace.configuration"):
            return
        root = self.default_root()
        try:
            values = await asyncio.wait_for(self.workspace_configuration_async(
                types.ConfigurationParams(items=[types.ConfigurationItem(
                    section=CONFIG_SECTION, scope_uri=root.as_uri() if root else None)])), 10)
        except Exception as exc:
            log.info("workspace/configuration failed: %s", exc)
            return
        if values and values[0] is not None:
            self.config_settings = parse_settings(values[0], "workspace/configuration")
            self.apply_settings()

    # -- prompt files --------------------------------------------------------------------------

    async def reload_prompts(self) -> None:
        await anyio.to_thread.run_sync(self.prompts.load, self.default_root())
        for problem in self.prompts.problems:
            self.log_to_editor(types.MessageType.Warning, f"channelcoder prompt file {problem}")

    # -- after a job ---------------------------------------------------------------------------

    async def announce(self, run: LspJob) -> None:
        """Tell the user how a job ended: errors, answers, denials; offer unbound proposals."""
        reply = run.reply or {}
        error = reply.get("error")
        if error and error.get("code") != "cancelled":
            hint = f" ({error['hint']})" if error.get("hint") else ""
            self.show(types.MessageType.Error, f"Claude job failed: {error['message']}{hint}")
        result = run.job.result
        if result is not None:
            for denial in result.permission_denials:
                self.warn_once(f"Claude was not allowed to use {denial.tool_name}"
                               + (f": {denial.hint}" if denial.hint else ""))
        text = reply.get("text") or ""
        if text and reply.get("ok"):
            if run.kind == "ask" or len(text) > LONG_ANSWER or "\n" in text.strip():
                self.spawn(lambda: self._show_answer(run, text))
            else:
                self.show(types.MessageType.Info, f"Claude: {text.strip()}")
        if run.proposal is not None and not run.bound:
            proposal = run.proposal
            self.spawn(lambda: self.offers.offer(proposal))

    async def _show_answer(self, run: LspJob, text: str) -> None:
        from .offers import write_document

        body = f"# {run.title}\n\n{text.strip()}\n"
        path = await anyio.to_thread.run_sync(write_document, "answers", f"{run.id}.md", body)
        if not self.can("window.show_document.support"):
            self.show(types.MessageType.Info,
                      f"Claude answered (job {run.id}); the answer is in the log output")
        await self.show_document_or_log(path, body)

    # -- lifecycle -----------------------------------------------------------------------------

    async def close(self) -> None:
        """Cancel every job, remove every container this server made. Every caller (shutdown,
        exit, the end of the stream, SIGTERM) waits for the one clean-up, which a cancelled
        caller does not interrupt: the process must not end while it runs."""
        if self._closing is None:
            self._closing = asyncio.get_running_loop().create_task(self._close(),
                                                                   name="channelcoder-close")
        closing = self._closing
        interrupted = False
        while not closing.done():
            try:
                await asyncio.shield(closing)
            except asyncio.CancelledError:
                interrupted = True
        if interrupted:
            raise asyncio.CancelledError
        closing.result()

    async def _close(self) -> None:
        await self.runs.close()
        try:
            await self.offers.let_go()
        except Exception:
            log.exception("letting go of the proposals failed")
        if self.standby is not None:
            try:
                await self.standby.aclose()
            except Exception:
                log.exception("closing the standby failed")
        await close_sandboxes()

    def stop(self) -> None:
        if self._stop is not None:
            self._stop()


def _standby_provider() -> StandbyProvider:
    from .standby_provider import SandboxStandby

    return SandboxStandby()


async def close_sandboxes() -> None:
    """Ask the sandbox manager (if one was made) to remove what it created."""
    from ..sandbox.manager import SandboxManager

    manager = SandboxManager.existing()
    if manager is None:
        return
    try:
        with anyio.move_on_after(10):
            await manager.close()
    except Exception:
        log.exception("closing the sandbox manager failed")


def _uri_path(uri: str) -> str | None:
    parsed = urlparse(uri)
    return unquote(parsed.path) if parsed.scheme == "file" else None


# ---------------------------------------------------------------------------------------------
# Features


def create_server() -> ChannelCoderServer:
    from . import commands

    server = ChannelCoderServer()
    commands.register(server)

    @server.feature(types.INITIALIZE)
    def initialize(ls: ChannelCoderServer, params: types.InitializeParams) -> None:
        ls.init_settings = parse_settings(params.initialization_options, "initializationOptions")
        ls.settings = merge_settings(ls.init_settings)
        ls.runs.set_max_jobs(ls.settings.max_jobs)
        if not ls.log_level_locked:
            logs.set_level(ls.settings.server.log_level)

    @server.feature(types.INITIALIZED)
    def initialized(ls: ChannelCoderServer, params: types.InitializedParams) -> None:
        for warning in ls.init_settings.warnings:
            ls.warn_once(warning)
        _stop_on_sigterm(ls)
        ls.spawn(lambda: _after_initialized(ls))

    @server.feature(types.SHUTDOWN)
    async def shutdown(ls: ChannelCoderServer, params: None) -> None:
        await ls.close()

    @server.feature(types.TEXT_DOCUMENT_DID_OPEN)
    def did_open(ls: ChannelCoderServer, params: types.DidOpenTextDocumentParams) -> None:
        return None

    @server.feature(types.TEXT_DOCUMENT_DID_CHANGE)
    def did_change(ls: ChannelCoderServer, params: types.DidChangeTextDocumentParams) -> None:
        return None

    @server.feature(types.TEXT_DOCUMENT_DID_CLOSE)
    def did_close(ls: ChannelCoderServer, params: types.DidCloseTextDocumentParams) -> None:
        return None

    @server.feature(types.TEXT_DOCUMENT_DID_SAVE, types.SaveOptions(include_text=False))
    def did_save(ls: ChannelCoderServer, params: types.DidSaveTextDocumentParams) -> None:
        if "/.channelcoder/prompts/" in unquote(params.text_document.uri):
            ls.spawn(ls.reload_prompts)

    @server.feature(types.WORKSPACE_DID_CHANGE_WATCHED_FILES)
    def watched(ls: ChannelCoderServer, params: types.DidChangeWatchedFilesParams) -> None:
        if any("/.channelcoder/" in unquote(change.uri) for change in params.changes):
            ls.spawn(ls.reload_prompts)

    @server.feature(types.WORKSPACE_DID_CHANGE_CONFIGURATION)
    def configuration(ls: ChannelCoderServer,
                      params: types.DidChangeConfigurationParams) -> None:
        settings = params.settings
        if isinstance(settings, dict) and CONFIG_SECTION in settings:
            ls.config_settings = parse_settings(settings[CONFIG_SECTION],
                                                "didChangeConfiguration")
            ls.apply_settings()
        else:
            ls.spawn(ls.fetch_configuration)

    @server.feature(types.TEXT_DOCUMENT_CODE_ACTION, types.CodeActionOptions(
        code_action_kinds=ADVERTISED_KINDS, resolve_provider=True))
    def code_action(ls: ChannelCoderServer,
                    params: types.CodeActionParams) -> list[types.CodeAction]:
        ls.last_context = (params.text_document.uri, params.range,
                           list(params.context.diagnostics))
        return code_actions(params, ls.prompts)

    @server.feature(types.CODE_ACTION_RESOLVE)
    def resolve(ls: ChannelCoderServer, action: types.CodeAction) -> types.CodeAction:
        return action

    @server.feature(types.WINDOW_WORK_DONE_PROGRESS_CANCEL)
    def progress_cancel(ls: ChannelCoderServer, params: types.WorkDoneProgressCancelParams) -> None:
        for run in ls.runs.jobs.values():
            if run.token == params.token and run.active:
                log.info("job %s cancelled from its progress", run.id)
                run.cancel()
        cancel = ls.cancellers.pop(params.token, None)
        if cancel is not None:
            cancel()

    return server


def _stop_on_sigterm(ls: ChannelCoderServer) -> None:
    """An editor that kills its server (Neovim's forced stop sends SIGTERM) gets the same clean
    exit as `exit`: jobs cancelled, the standby and every container removed."""
    import signal

    with contextlib.suppress(NotImplementedError, RuntimeError, ValueError):
        asyncio.get_running_loop().add_signal_handler(signal.SIGTERM, ls.stop)


async def _after_initialized(ls: ChannelCoderServer) -> None:
    from .consent import ask_once

    logs.forward_to_editor(lambda level, text: ls.log_to_editor(
        types.MessageType.Error if level >= logging.ERROR else types.MessageType.Warning, text))
    if ls.settings.layer.get("docker") is not False:
        ls.spawn(_reap_dead_servers)
    await _register_watchers(ls)
    await ls.fetch_configuration()
    await ls.reload_prompts()
    root = ls.default_root()
    if ls.standby is not None and root is not None and ls.settings.server.standby:
        ls.standby.start(root, ls.settings.layer)
    ls.spawn(ls.offers.expire)
    if root is not None:
        ls.spawn(lambda: _recover_git(ls, root))
        ls.spawn(lambda: ls.offers.recover(root))
        await ask_once(ls, root)


async def _reap_dead_servers() -> None:
    """Remove at once the sandboxes of channelcoder processes that died (a crashed server of
    this or another workspace): connecting the engine reaps them. Never a live process's."""
    from ..sandbox.manager import SandboxManager

    try:
        await SandboxManager.shared().engine()
    except Exception as exc:
        log.info("no engine to reap dead servers' sandboxes in: %s", exc)


async def _recover_git(ls: ChannelCoderServer, root: Path) -> None:
    """A sandboxed job here whose process died left its git mirror: check and bring it back."""
    from ..workspace.mirror import recover

    found = await anyio.to_thread.run_sync(recover, root)
    for event in found.events:
        ls.show(types.MessageType.Warning, f"Security, in Claude's sandbox: {event.describe()}")
    for notice in found.notices:
        ls.log_to_editor(types.MessageType.Info, f"channelcoder: {notice}")


async def _register_watchers(ls: ChannelCoderServer) -> None:
    registrations: list[types.Registration] = []
    if ls.can("workspace.did_change_watched_files.dynamic_registration"):
        registrations.append(types.Registration(
            id="channelcoder-prompts", method=types.WORKSPACE_DID_CHANGE_WATCHED_FILES,
            register_options=types.DidChangeWatchedFilesRegistrationOptions(watchers=[
                types.FileSystemWatcher(glob_pattern=PROMPT_GLOB)])))
    if ls.can("workspace.did_change_configuration.dynamic_registration"):
        registrations.append(types.Registration(
            id="channelcoder-configuration", method=types.WORKSPACE_DID_CHANGE_CONFIGURATION,
            register_options=types.DidChangeConfigurationRegistrationOptions(
                section=CONFIG_SECTION)))
    if not registrations:
        return
    try:
        await asyncio.wait_for(ls.client_register_capability_async(
            types.RegistrationParams(registrations=registrations)), 10)
    except Exception as exc:
        log.info("client/registerCapability failed: %s", exc)


__all__ = ["PROMPTS_DIR", "ChannelCoderServer", "create_server"]
