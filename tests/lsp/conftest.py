"""A real `channelcoder lsp` process driven by pytest-lsp's client, plus a tiny editor model.

`lsp(root, caps=..., init=...)` starts the server (python -m channelcoder lsp) with the test's
environment (the scripted model's URL included), initializes it for `root` and returns an
`Session` with the client and an `Editor` that answers `workspace/applyEdit` the way a real
editor does: a versioned edit for a buffer whose version moved on is refused.
"""

from __future__ import annotations

import asyncio
import os
import sys
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import unquote, urlparse

import pytest
import pytest_asyncio
from lsprotocol import types
from pytest_lsp import LanguageClient, client_capabilities
from pytest_lsp.client import make_test_lsp_client

from channelcoder.lsp.text import apply_edits

SERVER = [sys.executable, "-m", "channelcoder", "lsp", "--log-level", "debug"]
GUARD = 10.0


def path_of(uri: str) -> Path:
    return Path(unquote(urlparse(uri).path))


@dataclass
class Buffer:
    uri: str
    text: str
    version: int


@dataclass
class Editor:
    """Open buffers and an applyEdit handler with real version checks."""

    client: LanguageClient
    encoding: str = "utf-16"
    buffers: dict[str, Buffer] = field(default_factory=dict)
    edits: list[types.ApplyWorkspaceEditParams] = field(default_factory=list)
    answers: list[bool] = field(default_factory=list)
    refuse_all: bool = False
    received: asyncio.Event = field(default_factory=asyncio.Event)

    def open(self, path: Path, text: str | None = None, language: str = "python") -> str:
        uri = path.as_uri()
        text = path.read_text() if text is None else text
        self.buffers[uri] = Buffer(uri, text, 1)
        self.client.text_document_did_open(types.DidOpenTextDocumentParams(
            text_document=types.TextDocumentItem(uri=uri, language_id=language, version=1,
                                                 text=text)))
        return uri

    def type_text(self, uri: str, text: str) -> None:
        """Replace the buffer's whole text without saving (a didChange)."""
        buffer = self.buffers[uri]
        buffer.version += 1
        buffer.text = text
        self.client.text_document_did_change(types.DidChangeTextDocumentParams(
            text_document=types.VersionedTextDocumentIdentifier(uri=uri, version=buffer.version),
            content_changes=[types.TextDocumentContentChangeWholeDocument(text=text)]))

    def apply(self, params: types.ApplyWorkspaceEditParams) -> types.ApplyWorkspaceEditResult:
        self.edits.append(params)
        self.received.set()
        result = self._apply(params.edit)
        self.answers.append(result.applied)
        return result

    def _apply(self, edit: types.WorkspaceEdit) -> types.ApplyWorkspaceEditResult:
        if self.refuse_all:
            return types.ApplyWorkspaceEditResult(applied=False, failure_reason="refused")
        changes = list(edit.document_changes or [])
        for change in changes:  # check everything first: all or nothing
            if isinstance(change, types.TextDocumentEdit):
                buffer = self.buffers.get(change.text_document.uri)
                version = change.text_document.version
                if buffer is not None and version is not None and version != buffer.version:
                    return types.ApplyWorkspaceEditResult(
                        applied=False, failure_reason=f"{buffer.uri} has version "
                                                      f"{buffer.version}, not {version}")
        for change in changes:
            if isinstance(change, types.TextDocumentEdit):
                self._edit(change.text_document.uri, list(change.edits))
            elif isinstance(change, types.CreateFile):
                path_of(change.uri).write_text("")
            elif isinstance(change, types.DeleteFile):
                path_of(change.uri).unlink()
            elif isinstance(change, types.RenameFile):
                path_of(change.old_uri).rename(path_of(change.new_uri))
        for uri, edits in (edit.changes or {}).items():
            self._edit(uri, list(edits))
        return types.ApplyWorkspaceEditResult(applied=True)

    def _edit(self, uri: str, edits: list[Any]) -> None:
        spans = [((e.range.start.line, e.range.start.character),
                  (e.range.end.line, e.range.end.character), e.new_text) for e in edits]
        buffer = self.buffers.get(uri)
        if buffer is not None:
            self.type_text(uri, apply_edits(buffer.text, spans, self.encoding))
        else:
            path = path_of(uri)
            path.write_bytes(apply_edits(path.read_bytes().decode(), spans,
                                         self.encoding).encode())

    async def wait_edit(self, count: int = 1) -> types.ApplyWorkspaceEditParams:
        async with asyncio.timeout(GUARD):
            while len(self.edits) < count:
                self.received.clear()
                await self.received.wait()
        return self.edits[count - 1]


@dataclass
class Session:
    client: LanguageClient
    editor: Editor
    root: Path
    init: types.InitializeResult
    requests: list[types.ShowMessageRequestParams]
    events: list[dict[str, Any]]
    registrations: list[types.Registration]
    last_request: str = ""

    async def command(self, name: str, *arguments: Any, token: Any = None,
                      guard: float = 120.0) -> Any:
        """Execute a command; its result as plain JSON (jobs take a while: a longer guard)."""
        import uuid

        msg_id = str(uuid.uuid4())
        future = self.client.protocol.send_request(
            types.WORKSPACE_EXECUTE_COMMAND, types.ExecuteCommandParams(
                command=name, arguments=list(arguments), work_done_token=token), msg_id=msg_id)
        self.client.protocol._result_types.pop(msg_id, None)
        self.last_request = msg_id
        async with asyncio.timeout(guard):
            return _plain(await asyncio.wrap_future(future))

    def progress(self, token: Any) -> list[Any]:
        return list(self.client.progress_reports.get(token, []))

    def job_events(self, job_id: str) -> list[dict[str, Any]]:
        return [e["event"] for e in self.events if e["jobId"] == job_id]

    def errors(self) -> list[str]:
        return [m.message for m in self.client.messages if m.type == types.MessageType.Error]


Start = Callable[..., Awaitable[Session]]


@pytest_asyncio.fixture
async def lsp() -> AsyncIterator[Start]:
    sessions: list[Session] = []

    async def start(root: Path, *, caps: str = "visual-studio-code",
                    init: dict[str, Any] | None = None, env: dict[str, str] | None = None,
                    trust_answer: str | None = None, server: list[str] | None = None) -> Session:
        client = make_test_lsp_client()
        capabilities = client_capabilities(caps)
        encodings = capabilities.general.position_encodings if capabilities.general else None
        editor = Editor(client, encoding=str(encodings[0].value if hasattr(encodings[0], "value")
                                             else encodings[0]) if encodings else "utf-16")
        requests: list[types.ShowMessageRequestParams] = []
        events: list[dict[str, Any]] = []
        registrations: list[types.Registration] = []

        @client.feature(types.WORKSPACE_APPLY_EDIT)
        def apply_edit(params: types.ApplyWorkspaceEditParams) -> types.ApplyWorkspaceEditResult:
            return editor.apply(params)

        @client.feature(types.WINDOW_SHOW_MESSAGE_REQUEST)
        def message_request(params: types.ShowMessageRequestParams) -> Any:
            requests.append(params)
            return types.MessageActionItem(title=trust_answer) if trust_answer else None

        @client.feature(types.CLIENT_REGISTER_CAPABILITY)
        def register_capability(params: types.RegistrationParams) -> None:
            registrations.extend(params.registrations)

        @client.feature("channelcoder/event")
        def event(params: Any) -> None:
            events.append(_plain(params))

        await client.start_io(*(server or SERVER), env={**os.environ, **(env or {})})
        result = await client.initialize_session(types.InitializeParams(
            capabilities=capabilities, root_uri=root.as_uri(),
            workspace_folders=[types.WorkspaceFolder(uri=root.as_uri(), name=root.name)],
            initialization_options=init))
        session = Session(client, editor, root, result, requests, events, registrations)
        sessions.append(session)
        return session

    yield start
    for session in sessions:
        try:
            async with asyncio.timeout(GUARD):
                await session.client.shutdown_session()
        except Exception:
            pass
        await session.client.stop()


def _plain(value: Any) -> Any:
    """pygls hands unknown notifications' params over as namespaces; make them dicts."""
    if isinstance(value, dict):
        return {k: _plain(v) for k, v in value.items()}
    if isinstance(value, list | tuple) and not hasattr(value, "_asdict"):
        return [_plain(v) for v in value]
    if hasattr(value, "_asdict"):
        return {k: _plain(v) for k, v in value._asdict().items()}
    if hasattr(value, "__dict__") and not isinstance(value, type):
        return {k: _plain(v) for k, v in vars(value).items()}
    return value


def native(**extra: Any) -> dict[str, Any]:
    """Settings for a job on the host's claude (tests as root must allow tools explicitly)."""
    return {"docker": False, "tools": ["Read", "Edit", "Write", "Bash", "Grep", "Glob"], **extra}


@pytest.fixture
def workspace(git_repo: Path) -> Path:
    return git_repo


async def wait_for(predicate: Callable[[], bool], guard: float = GUARD,
                   what: str = "the condition") -> None:
    """Poll `predicate` until true; a hang guard, not a timing assertion."""
    deadline = time.monotonic() + guard
    while True:
        if predicate():
            return
        if time.monotonic() > deadline:
            raise AssertionError(f"{what} did not happen within {guard:g} s")
        await asyncio.sleep(0.02)


async def raw_request(client: LanguageClient, method: str, params: Any) -> Any:
    """A request whose result is kept as plain JSON (the client converter mis-reads some)."""
    import uuid

    msg_id = str(uuid.uuid4())
    params_type = types.METHOD_TO_TYPES[method][2]
    if isinstance(params, dict) and params_type is not None:
        params = client.protocol._converter.structure(params, params_type)
    future = client.protocol.send_request(method, params, msg_id=msg_id)
    client.protocol._result_types.pop(msg_id, None)
    async with asyncio.timeout(GUARD):
        return _plain(await asyncio.wrap_future(future))
