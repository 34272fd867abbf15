"""`workspace/executeCommand` handlers (docs/lsp.md §2).

Each handler takes the command's one optional object argument (already checked by the
protocol) and validates its keys; bad input raises `UsageError` -> a JSON-RPC error with a hint.
"""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import Awaitable, Callable, Mapping
from functools import partial
from pathlib import Path
from typing import TYPE_CHECKING, Any
from urllib.parse import unquote

import anyio
from lsprotocol import types

from ..errors import UsageError
from ..jobs import Job
from .context import (
    Document,
    EditorContext,
    context_block,
    differs_from_disk,
    fix_prompt,
    in_range,
    parse_diagnostic,
    parse_range,
    uri_to_path,
)
from .job_requests import build_job_request
from .network_ask import network_asker
from .progress import JobProgress
from .proposal_store import JOB_ID
from .protocol import current_params
from .runs import LspJob

if TYPE_CHECKING:
    from .server import ChannelCoderServer

Handler = Callable[["ChannelCoderServer", dict[str, Any]], Awaitable[Any]]

ASK_TOOLS = ["Read", "Grep", "Glob"]
ASK_DEFAULT = "Explain the selected code."
ASK_FILE_DEFAULT = "Explain this file: what it is for and how it works."
REJECTED = ("I rejected the changes you proposed. My reason: {reason}\n\n"
            "Please revise your changes with this in mind.")


# ---------------------------------------------------------------------------------------------
# Argument helpers


def _str(arg: Mapping[str, Any], key: str, *, required: bool = False, hint: str = "") -> str | None:
    value = arg.get(key)
    if value is None or (isinstance(value, str) and not value.strip() and not required):
        if required:
            raise UsageError(f"'{key}' is required", hint=hint)
        return None
    if not isinstance(value, str) or not value.strip():
        raise UsageError(f"'{key}' must be a non-empty string, got {_kind(value)}", hint=hint)
    return value


def _kind(value: Any) -> str:
    return "null" if value is None else type(value).__name__


def _bool(arg: Mapping[str, Any], key: str) -> bool:
    value = arg.get(key, False)
    if not isinstance(value, bool):
        raise UsageError(f"'{key}' must be true or false, got {_kind(value)}")
    return value


def _job_id(ls: ChannelCoderServer, arg: Mapping[str, Any], *, new: bool) -> str | None:
    value = arg.get("jobId")
    if value is None:
        return None
    if not isinstance(value, str) or not JOB_ID.match(value):
        raise UsageError(f"'jobId' must be 1-64 letters, digits, '_', '.' or '-', got {value!r}",
                         hint="omit it to let the server choose one")
    if new and ls.runs.find(value) is not None:
        raise UsageError(f"job id {value!r} is already in use", hint="choose a fresh id")
    return value


def _token(ls: ChannelCoderServer, arg: Mapping[str, Any]) -> tuple[types.ProgressToken | None,
                                                                   bool]:
    """(token, server must create it)."""
    value = arg.get("workDoneToken")
    params = current_params.get()
    if value is None and params is not None:
        value = params.work_done_token
    if value is not None:
        if isinstance(value, bool) or not isinstance(value, str | int):
            raise UsageError(f"'workDoneToken' must be a string or an integer, got {_kind(value)}")
        return value, False
    if ls.can("window.work_done_progress"):
        return str(uuid.uuid4()), True
    return None, False


def _options(arg: Mapping[str, Any]) -> dict[str, Any]:
    value = arg.get("options")
    if value is None:
        return {}
    if not isinstance(value, Mapping):
        raise UsageError(f"'options' must be an object of run options, got {_kind(value)}",
                         hint="e.g. {\"apply\": \"direct\", \"model\": \"…\"}")
    return dict(value)


async def _document(ls: ChannelCoderServer, uri: Any) -> Document:
    roots = ls.roots()
    if not roots:
        raise UsageError("no workspace folder is open", hint="open the project folder first")
    root, path = uri_to_path(uri, roots)
    assert isinstance(uri, str)
    document = ls.workspace.text_documents.get(unquote(uri))
    if document is not None:
        text = document.source
        unsaved = await anyio.to_thread.run_sync(differs_from_disk, path, text)
        return Document(uri=uri, path=path, root=root, text=text, version=document.version,
                        unsaved=unsaved)

    def read() -> str:
        try:
            return path.read_bytes().decode("utf-8")
        except FileNotFoundError:
            raise UsageError(f"{uri} does not exist", hint="save the document first") from None
        except IsADirectoryError:
            raise UsageError(f"{uri} is a directory, not a document") from None
        except (OSError, UnicodeDecodeError) as exc:
            raise UsageError(f"cannot read {uri}: {exc}") from None

    return Document(uri=uri, path=path, root=root, text=await anyio.to_thread.run_sync(read))


async def _context(ls: ChannelCoderServer, arg: Mapping[str, Any]) -> EditorContext:
    """The document, selection and diagnostics from the argument, else the last code action."""
    uri = arg.get("uri")
    remembered = None
    if uri is None and ls.last_context is not None:
        uri = ls.last_context[0]
        remembered = ls.context_for(uri)
    if uri is None:
        return EditorContext()
    document = await _document(ls, uri)
    context = EditorContext(document=document)
    if arg.get("range") is not None:
        context.selection = parse_range(arg["range"], document.text, ls.encoding)
    elif remembered is not None and remembered.selection is not None:
        start, end = remembered.selection.start, remembered.selection.end
        rng = {"start": {"line": start[0], "character": start[1]},
               "end": {"line": end[0], "character": end[1]}}
        try:
            context.selection = parse_range(rng, document.text, ls.encoding)
        except UsageError:
            context.selection = None
    if ls.last_context is not None and ls.last_context[0] == uri and context.selection:
        context.diagnostics = [d for d in ls.last_context[2] if in_range(d, context.selection)]
    return context


# ---------------------------------------------------------------------------------------------
# Starting and awaiting jobs


async def _start(ls: ChannelCoderServer, arg: Mapping[str, Any], *, kind: str,
                 source: str | Path, short: str, flags: dict[str, Any],
                 context: EditorContext | None = None, root: Path | None = None,
                 data: Mapping[str, Any] | None = None, bound: bool = True,
                 auto_session: bool | None = None) -> LspJob:
    job_id = _job_id(ls, arg, new=True) or uuid.uuid4().hex[:12]
    token, create = _token(ls, arg)
    context = context or EditorContext()
    root = context.document.root if context.document else (root or ls.default_root())
    if root is None:
        raise UsageError("no workspace folder is open", hint="open the project folder first")
    documents = ls.open_documents(root)
    buffers = {str(path): text for path, _, text, _ in documents}
    versions = {path.relative_to(root).as_posix(): version for path, _, _, version in documents
                if version is not None}
    wants_session = kind in ("run", "fix") if auto_session is None else auto_session
    built = await anyio.to_thread.run_sync(partial(
        build_job_request, source, flags=flags, data=data, workspace=root,
        settings=ls.settings.layer, buffers=buffers, job_id=job_id,
        auto_session=wants_session and "session" not in flags))
    request = built.request
    for notice in built.notices:
        ls.warn_once(notice)
    request.prompt += context_block(context)
    docker = request.options.docker
    if docker is not None and docker.network == "proxy" and docker.network_ask:
        request.ask_network = network_asker(ls, root)
    job = Job(request, standby=ls.standby)
    run = LspJob(job=job, kind=kind, title=_title(short), workspace=root,
                 uri=context.document.uri if context.document else None, token=token,
                 create_token=create, prompt=short, versions=versions, flags=dict(flags),
                 bound=bound, auto_session=built.auto_session)
    ls.runs.start(run)
    return run


def _title(prompt: str) -> str:
    line = " ".join(prompt.split())
    return "Claude: " + (line if len(line) <= 60 else line[:59] + "…")


async def _reply(ls: ChannelCoderServer, run: LspJob) -> dict[str, Any]:
    """Wait for the job; a cancelled request cancels it. The proposal goes out after the reply."""
    try:
        await run.done.wait()
    except asyncio.CancelledError:
        run.cancel()
        raise
    proposal = run.proposal
    if proposal is not None:
        task = asyncio.current_task()
        if task is not None:
            task.add_done_callback(lambda _: ls.spawn(lambda: ls.offers.offer(proposal)))
        else:
            ls.spawn(lambda: ls.offers.offer(proposal))
    return run.reply or {}


# ---------------------------------------------------------------------------------------------
# Commands


async def run_command(ls: ChannelCoderServer, arg: dict[str, Any]) -> Any:
    prompt = _str(arg, "prompt")
    prompt_file = _str(arg, "promptFile")
    if prompt is None and prompt_file is None:
        raise UsageError("channelcoder.run needs a prompt",
                         hint="pass {\"prompt\": \"what Claude should do\"} or "
                              "{\"promptFile\": \".channelcoder/prompts/x.md\"}")
    data = arg.get("data")
    if data is not None and not isinstance(data, Mapping):
        raise UsageError(f"'data' must be an object of prompt-file values, got {_kind(data)}")
    context = await _context(ls, arg)
    source: str | Path
    if prompt_file is not None:
        root = context.document.root if context.document else ls.default_root()
        path = Path(prompt_file)
        source = path if path.is_absolute() or root is None else root / path
        short = Path(prompt_file).stem
    else:
        assert prompt is not None
        source, short = prompt, prompt
    run = await _start(ls, arg, kind="run", source=source, short=short, flags=_options(arg),
                       context=context, data=data)
    return await _reply(ls, run)


async def ask_command(ls: ChannelCoderServer, arg: dict[str, Any]) -> Any:
    context = await _context(ls, arg)
    selected = context.selection is not None and not context.selection.empty
    prompt = _str(arg, "prompt") or (ASK_DEFAULT if selected else ASK_FILE_DEFAULT)
    if context.document is None and _str(arg, "prompt") is None:
        raise UsageError("channelcoder.ask needs a question or a document",
                         hint="pass {\"prompt\": \"your question\"} or {\"uri\": …, \"range\": …}")
    run = await _start(ls, arg, kind="ask", source=prompt, short=prompt,
                       flags={"tools": ASK_TOOLS}, context=context)
    return await _reply(ls, run)


async def fix_command(ls: ChannelCoderServer, arg: dict[str, Any]) -> Any:
    uri = arg.get("uri")
    raw = arg.get("diagnostic")
    if uri is None and raw is None and ls.last_context is not None and ls.last_context[2]:
        uri, diagnostic = ls.last_context[0], ls.last_context[2][0]
    elif raw is None:
        raise UsageError("channelcoder.fix needs a diagnostic",
                         hint="run it from a 'Fix with Claude' code action, or pass "
                              "{\"uri\": …, \"diagnostic\": …}")
    else:
        if uri is None:
            raise UsageError("'uri' is required with 'diagnostic'")
        diagnostic = parse_diagnostic(raw)
    document = await _document(ls, uri)
    rng = {"start": {"line": diagnostic.range.start.line,
                     "character": diagnostic.range.start.character},
           "end": {"line": diagnostic.range.end.line, "character": diagnostic.range.end.character}}
    parse_range(rng, document.text, ls.encoding)
    context = EditorContext(document=document)
    run = await _start(ls, arg, kind="fix", source=fix_prompt(document, diagnostic),
                       short=f"fix: {diagnostic.message}", flags={"apply": "propose"},
                       context=context)
    return await _reply(ls, run)


async def cancel_command(ls: ChannelCoderServer, arg: dict[str, Any]) -> Any:
    job_id = _job_id(ls, arg, new=False)
    if job_id is None:
        run = ls.runs.newest_active()
        if run is None:
            return {"jobId": None, "cancelled": False}
    else:
        found = ls.runs.find(job_id)
        if found is None:
            raise UsageError(f"there is no job {job_id!r}", hint="see channelcoder.jobs")
        run = found
    return {"jobId": run.id, "cancelled": run.cancel()}


async def jobs_command(ls: ChannelCoderServer, arg: dict[str, Any]) -> Any:
    proposals = await anyio.to_thread.run_sync(ls.offers.pending_info)
    return {"jobs": ls.runs.listing(), "proposals": proposals}


async def apply_proposal_command(ls: ChannelCoderServer, arg: dict[str, Any]) -> Any:
    return await ls.offers.apply(_job_id(ls, arg, new=False))


async def reject_proposal_command(ls: ChannelCoderServer, arg: dict[str, Any]) -> Any:
    reason = _str(arg, "reason")
    proposal = await ls.offers.reject(_job_id(ls, arg, new=False))
    if reason is None:
        await ls.offers.release(proposal)
        return {"jobId": proposal.job_id, "rejected": True, "nextJobId": None}
    flags = dict(proposal.flags)
    flags["apply"] = "propose"
    if proposal.session:
        flags["session"] = proposal.session
    elif proposal.session_id:
        flags["resume"] = proposal.session_id
    follow = {k: v for k, v in arg.items() if k == "workDoneToken"}
    run = await _start(ls, follow, kind="follow-up", source=REJECTED.format(reason=reason.strip()),
                       short=f"revise: {reason.strip()}", flags=flags,
                       root=Path(proposal.workspace), bound=False, auto_session=False)
    run.auto_session = proposal.auto_session
    return {"jobId": proposal.job_id, "rejected": True, "nextJobId": run.id}


async def build_image_command(ls: ChannelCoderServer, arg: dict[str, Any]) -> Any:
    from .maintenance import build_image

    force = _bool(arg, "force")
    token, create = _token(ls, arg)
    progress = JobProgress(ls, token, create=create, title="Building the sandbox image")
    task = asyncio.current_task()
    if token is not None and task is not None:
        ls.cancellers[token] = task.cancel  # the progress' cancel button stops the build
    try:
        return await build_image(ls, progress, force=force)
    finally:
        if token is not None:
            ls.cancellers.pop(token, None)


async def doctor_command(ls: ChannelCoderServer, arg: dict[str, Any]) -> Any:
    from .maintenance import doctor

    return await doctor(ls)


async def sessions_command(ls: ChannelCoderServer, arg: dict[str, Any]) -> Any:
    from .maintenance import list_sessions

    return {"sessions": await anyio.to_thread.run_sync(list_sessions)}


async def reset_session_command(ls: ChannelCoderServer, arg: dict[str, Any]) -> Any:
    from .maintenance import remove_session

    name = _str(arg, "name")
    if name is None:
        named = [run for run in reversed(ls.runs.jobs.values())
                 if run.job.request.options.session]
        if not named:
            raise UsageError("no job of this server used a session",
                             hint="pass {\"name\": \"…\"}; see channelcoder.sessions")
        name = named[0].job.request.options.session
    assert name is not None
    removed = await anyio.to_thread.run_sync(remove_session, name)
    return {"name": name, "removed": removed}


HANDLERS: dict[str, Handler] = {
    "channelcoder.run": run_command,
    "channelcoder.ask": ask_command,
    "channelcoder.fix": fix_command,
    "channelcoder.cancel": cancel_command,
    "channelcoder.jobs": jobs_command,
    "channelcoder.applyProposal": apply_proposal_command,
    "channelcoder.rejectProposal": reject_proposal_command,
    "channelcoder.buildImage": build_image_command,
    "channelcoder.doctor": doctor_command,
    "channelcoder.sessions": sessions_command,
    "channelcoder.resetSession": reset_session_command,
}


def register(server: ChannelCoderServer) -> None:
    for name, handler in HANDLERS.items():
        server.command(name)(_bind(handler))


def _bind(handler: Handler) -> Callable[..., Awaitable[Any]]:
    async def command(ls: ChannelCoderServer, arg: dict[str, Any]) -> Any:
        return await handler(ls, arg)

    command.__name__ = handler.__name__
    return command
