"""The Python API and the request builder every front end shares.

    result = await claude("Explain src/app.py", docker=True)
    async for event in stream("Fix the tests", tools=["Read", "Edit", "Bash(pytest:*)"]):
        ...
    result = run_sync("Summarize the README")
"""

from __future__ import annotations

import os
from collections.abc import AsyncIterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from .claude.events import AnyEvent, Result
from .config import (
    build_options,
    check_mcp_config,
    load_project_file,
    merge_layers,
    normalize_layer,
    untrusted_view,
)
from .jobs import Job, Request
from .prompts import load_prompt_file, render
from .trust import is_trusted


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
    """Merge every source of options (DESIGN §3 precedence) into one validated Request.

    flags > prompt front matter > editor settings > .channelcoder/config.toml > defaults.
    Front matter and the project file are files in the workspace: in an untrusted workspace
    their isolation-weakening keys are dropped, each said once in `notices`.
    """
    root = (workspace or Path.cwd()).resolve()
    notices: list[str] = []
    trusted = is_trusted(root) if trusted is None else trusted
    front: dict[str, Any] = {}
    if isinstance(prompt, Path):
        prompt_file = load_prompt_file(prompt)
        text = render(prompt_file, dict(data or {}))
        front = prompt_file.layer
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
    options = build_options(merge_layers(explicit, front, dict(settings or {}), project))
    if options.mcp_config:
        options = options.replace(mcp_config=check_mcp_config(options.mcp_config, root))
    return BuiltRequest(prompt=text, options=options, workspace=root, buffers=dict(buffers or {}),
                        env=dict(env or {}), job_id=job_id, notices=notices)


def _request(prompt: str | os.PathLike[str], kwargs: dict[str, Any]) -> BuiltRequest:
    data = kwargs.pop("data", None)
    workspace = kwargs.pop("workspace", None) or kwargs.pop("cwd", None)
    buffers = kwargs.pop("buffers", None)
    env = kwargs.pop("env", None)
    source: str | Path = prompt if isinstance(prompt, str) else Path(prompt)
    if isinstance(source, str) and source.endswith(".md") and Path(source).is_file():
        source = Path(source)
    return build_request(source, flags=kwargs, data=data,
                         workspace=Path(workspace) if workspace else None,
                         buffers=buffers, env=env)


async def claude(prompt: str | os.PathLike[str], **options: Any) -> Result:
    """Run one prompt (text, or a path to a prompt file) and return its Result.

    Options are those of DESIGN §3 in snake_case (`docker=True`, `tools=[...]`, `session=...`),
    plus `data` (prompt-file variables), `workspace`, `buffers` and `env`. A failed run is a
    Result with ok=False; a failure to run at all raises a ChannelCoderError.
    """
    return await Job(_request(prompt, dict(options))).run()


async def stream(prompt: str | os.PathLike[str], **options: Any) -> AsyncIterator[AnyEvent]:
    """Run one prompt and yield its events as they happen (text deltas, tool calls, ...)."""
    job = Job(_request(prompt, dict(options)))
    async for event in job.events():
        yield event


def run_sync(prompt: str | os.PathLike[str], **options: Any) -> Result:
    """`claude()` for scripts without an event loop."""
    import anyio

    async def main() -> Result:
        return await claude(prompt, **options)

    return anyio.run(main)
