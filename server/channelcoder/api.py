"""The Python API and the request builder every front end shares.

    from channelcoder import claude, stream, session, run_sync

    result = await claude("Explain src/app.py", docker=True)
    result = await claude("prompts/review.md", data={"pr": 42}, tools=["Read", "Grep"])
    async for event in stream("Fix the tests", tools=["Read", "Edit", "Bash(pytest:*)"]):
        ...
    s = session("refactor", docker=True)          # options for every turn of the session
    await s.claude("Find the duplicated parsing code")
    await s.claude("Now merge it into one function")   # resumes the first turn
    again = session.load("refactor")              # later, in another process
    result = run_sync("Summarize the README")     # without an event loop

Options are `config.RunOptions`' in snake_case (`RunKwargs` lists them with their types). A run that
fails is a `Result` with `ok=False`; a failure to run at all raises a `ChannelCoderError`.
"""

from __future__ import annotations

import os
from collections.abc import AsyncIterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal, TypedDict

from .claude.events import AnyEvent, Result
from .config import (
    DockerOptions,
    WorktreeOptions,
    build_options,
    check_mcp_config,
    load_project_file,
    merge_layers,
    normalize_layer,
    untrusted_view,
)
from .errors import SessionError
from .jobs import Job
from .request import Request
from .trust import is_trusted

if TYPE_CHECKING:
    from typing_extensions import Unpack

    from .sessions import SessionState

PathLike = str | os.PathLike[str]


class RunKwargs(TypedDict, total=False):
    """Keyword options of `claude()`, `stream()`, `run_sync()` and `Session`."""

    model: str
    max_turns: int
    permission_mode: Literal["default", "acceptEdits", "plan", "bypassPermissions", "dontAsk"]
    tools: Sequence[str] | str
    disallowed_tools: Sequence[str] | str
    system: str
    append_system: str
    resume: str
    continue_: bool
    session: str | Session
    mcp_config: str | Mapping[str, Any]
    timeout: float
    idle_timeout: float
    max_jobs: int
    docker: bool | str | DockerOptions | Mapping[str, Any]
    worktree: bool | str | WorktreeOptions | Mapping[str, Any]
    apply: Literal["direct", "propose"]
    verbose: bool
    partial_messages: bool
    claude_path: str
    add_dirs: Sequence[str]
    # Not run options: where and with what the prompt runs.
    data: Mapping[str, Any]
    workspace: PathLike
    cwd: PathLike
    buffers: Mapping[str, str]
    env: Mapping[str, str]


@dataclass
class BuiltRequest(Request):
    notices: list[str] = field(default_factory=list)


def build_request(
    prompt: str | Path,
    *,
    flags: Mapping[str, Any] | None = None,
    data: Mapping[str, Any] | None = None,
    workspace: Path | None = None,
    settings: Mapping[str, Any] | None = None,
    buffers: Mapping[str, str] | None = None,
    env: Mapping[str, str] | None = None,
    trusted: bool | None = None,
    job_id: str | None = None,
) -> BuiltRequest:
    """Merge every source of options into one validated Request.

    flags > prompt front matter > the named session's remembered options > editor settings >
    .channelcoder/config.toml > defaults. Front matter and the project file are files in the
    workspace: in an untrusted workspace their isolation-weakening keys are dropped, each said
    once in `notices`. A prompt file's body is interpolated with `data`; so is inline text when
    `data` is given.
    """
    root = (workspace or Path.cwd()).resolve()
    notices: list[str] = []
    trusted = is_trusted(root) if trusted is None else trusted
    front: dict[str, Any] = {}
    if isinstance(prompt, Path):
        from .prompts import load_prompt_file, render  # YAML: loaded only for prompt files

        prompt_file = load_prompt_file(prompt)
        text = render(prompt_file, dict(data or {}))
        front = prompt_file.layer
    elif data:
        from .prompts import render_text

        text = render_text(prompt, data)
    else:
        text = prompt
    project = load_project_file(root)
    if not trusted:
        front, dropped_front = untrusted_view(front)
        project, dropped_project = untrusted_view(project)
        for where, dropped in (("prompt front matter", dropped_front),
                               (".channelcoder/config.toml", dropped_project)):
            if dropped:
                notices.append(f"ignored {', '.join(dropped)} from {where}: this workspace is "
                               "not trusted (run 'channelcoder trust' to allow it)")
    explicit = normalize_layer(flags or {}, "arguments")
    layers = [explicit, front, dict(settings or {}), project]
    remembered = _session_layer(merge_layers(*layers).get("session"))
    options = build_options(merge_layers(explicit, front, remembered, *layers[2:]))
    if options.mcp_config:
        options = options.replace(mcp_config=check_mcp_config(options.mcp_config, root))
    return BuiltRequest(prompt=text, options=options, workspace=root, buffers=dict(buffers or {}),
                        env=dict(env or {}), job_id=job_id, notices=notices)


def _session_layer(name: Any) -> dict[str, Any]:
    """The options a named session started with (its later turns reuse them)."""
    if not isinstance(name, str) or not name:
        return {}
    from . import sessions

    state = sessions.load(name)
    return dict(state.options) if state is not None else {}


def _request(prompt: PathLike, kwargs: dict[str, Any]) -> BuiltRequest:
    data = kwargs.pop("data", None)
    workspace = kwargs.pop("workspace", None) or kwargs.pop("cwd", None)
    kwargs.pop("cwd", None)
    buffers = kwargs.pop("buffers", None)
    env = kwargs.pop("env", None)
    if isinstance(kwargs.get("session"), Session):
        kwargs["session"] = kwargs["session"].name
    root = Path(workspace) if workspace else None
    source: str | Path = prompt if isinstance(prompt, str) else Path(prompt)
    if isinstance(source, str) and source.endswith(".md") and "\n" not in source:
        for candidate in (Path(source), (root or Path.cwd()) / source):
            if candidate.is_file():
                source = candidate
                break
    return build_request(source, flags=kwargs, data=data, workspace=root, buffers=buffers,
                         env=env)


async def claude(prompt: PathLike, **options: Unpack[RunKwargs]) -> Result:
    """Run one prompt (text, or a path to a `.md` prompt file) and return its Result.

    `data` fills the prompt's `{variables}`; `workspace` (default: the current directory) is
    where it runs; `buffers` ({path: text}) are unsaved editor contents for `apply="propose"`;
    `env` is extra environment for claude. A failed run is a Result with ok=False; a failure
    to run at all (bad option, no Docker, cancelled, timed out) raises a ChannelCoderError.
    """
    return await Job(_request(prompt, dict(options))).run()


async def stream(prompt: PathLike, **options: Unpack[RunKwargs]) -> AsyncIterator[AnyEvent]:
    """Run one prompt and yield its events as they happen (text deltas, tool calls, …, Result).

    The stream ends with exactly one `Result` or `Error` event. Leaving the loop early stops
    the job (and its container).
    """
    async for event in _events(Job(_request(prompt, dict(options)))):
        yield event


async def _events(job: Job) -> AsyncIterator[AnyEvent]:
    """A job's events; closing this generator early closes the job's (which stops claude)."""
    events = job.events()
    try:
        async for event in events:
            yield event
    finally:
        await events.aclose()


def run_sync(prompt: PathLike, **options: Unpack[RunKwargs]) -> Result:
    """`claude()` for scripts without an event loop."""
    import anyio

    async def main() -> Result:
        return await claude(prompt, **options)

    return anyio.run(main)


class Session:
    """A named conversation: each turn resumes the previous one.

    `Session(name=None, **options)`: the options (e.g. `docker=True`, `tools=[...]`) apply to
    every turn; a turn's own keyword options win. The first turn's options are remembered with
    the session, so `Session.load(name)` (or `channelcoder run --session NAME`) continues it the
    same way — in Docker if it began in Docker. Without a name the session gets a generated one
    and is listed by `channelcoder sessions ls` only after `save()`.
    """

    def __init__(self, name: str | None = None, **options: Unpack[RunKwargs]) -> None:
        from . import sessions

        self.name = sessions.check_name(name) if name else sessions.new_name()
        self._named = name is not None
        defaults: dict[str, Any] = dict(options)
        workspace = defaults.pop("workspace", None) or defaults.pop("cwd", None)
        defaults.pop("session", None)
        self.workspace: Path | None = Path(workspace).resolve() if workspace else None
        self.defaults = defaults

    @classmethod
    def load(cls, name: str) -> Session:
        """An existing session by name (raises SessionError when there is none)."""
        from . import sessions

        state = sessions.load(name)
        if state is None:
            known = ", ".join(s.name for s in sessions.list_sessions()[:10]) or "none yet"
            raise SessionError(f"there is no session named '{name}'",
                               hint=f"sessions: {known} (channelcoder sessions ls)")
        loaded = cls(name)
        loaded.workspace = Path(state.workspace) if state.workspace else None
        return loaded

    # -- what it holds -------------------------------------------------------------------------

    @property
    def state(self) -> SessionState | None:
        """The stored session (None before its first turn)."""
        from . import sessions

        return sessions.load(self.name)

    @property
    def session_id(self) -> str | None:
        """The Claude session id the next turn resumes."""
        state = self.state
        return state.current_session_id if state else None

    @property
    def chain(self) -> list[str]:
        state = self.state
        return list(state.session_chain) if state else []

    @property
    def messages(self) -> list[dict[str, Any]]:
        state = self.state
        return list(state.messages) if state else []

    # -- turns -------------------------------------------------------------------------------

    async def claude(self, prompt: PathLike, **options: Unpack[RunKwargs]) -> Result:
        """One turn; returns its Result (see `channelcoder.claude`)."""
        return await Job(self._turn_request(prompt, dict(options))).run()

    async def stream(self, prompt: PathLike,
                     **options: Unpack[RunKwargs]) -> AsyncIterator[AnyEvent]:
        """One turn, as events (see `channelcoder.stream`)."""
        async for event in _events(Job(self._turn_request(prompt, dict(options)))):
            yield event

    def run_sync(self, prompt: PathLike, **options: Unpack[RunKwargs]) -> Result:
        import anyio

        async def main() -> Result:
            return await self.claude(prompt, **options)

        return anyio.run(main)

    def _turn_request(self, prompt: PathLike, options: dict[str, Any]) -> BuiltRequest:
        from . import sessions

        merged = {**self.defaults, **options, "session": self.name}
        workspace = merged.get("workspace") or merged.get("cwd") or self.workspace
        if workspace is not None:
            merged["workspace"] = workspace
            merged.pop("cwd", None)
        request = _request(prompt, merged)
        self.workspace = self.workspace or request.workspace
        if not sessions.exists(self.name):
            sessions.create(self.name, workspace=request.workspace, saved=self._named)
        return request

    # -- keeping it --------------------------------------------------------------------------

    def save(self, name: str | None = None) -> Path:
        """Keep the session (under `name`, when given) and return its file.

        Every turn is already written when it ends; `save()` makes an unnamed session a listed
        one, and `save(name)` renames it.
        """
        from . import sessions

        if name and name != self.name:
            if sessions.exists(self.name):
                sessions.rename(self.name, name)
            else:
                sessions.create(name, workspace=self.workspace)
            self.name = name
        else:
            sessions.create(self.name, workspace=self.workspace)
        self._named = True
        return sessions.session_file(self.name)

    def remove(self) -> bool:
        """Forget the session (its file, any snapshot kept for it, its sandbox transcripts and
        kept-warm sandbox)."""
        from .session_cleanup import remove_session

        return remove_session(self.name)

    def __repr__(self) -> str:
        return f"Session({self.name!r})"


session = Session
