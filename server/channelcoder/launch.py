"""One claude run, independent of where it runs: what it is and the one function that builds it.

`build_launch()` turns a job's options and prompt into a `LaunchSpec` (the argv, the directory it
works in, what is mounted beside it). A job, the CLI's head start and the standby sandbox all
build their launch here, so two launches of the same job compare equal. A backend's `prepare()`
ends with a `PreparedLaunch`: the spec and what the backend worked out for it (the resolved
image, a planned container), which `start()` then takes.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path

from .claude.argv import build_argv
from .claude.events import NetworkBlocked
from .config import RunOptions, resolve_text_or_file
from .request import AskNetwork
from .workspace.workplace import PlaceMount


@dataclass
class LaunchSpec:
    """One claude run. `argv[0]` is a placeholder ("claude"); the backend substitutes its binary.

    `cwd` is the host directory the job works in (workspace, worktree or snapshot); `workspace`
    the user's root.
    """

    argv: list[str]
    cwd: Path
    workspace: Path
    options: RunOptions
    job_id: str
    env: Mapping[str, str] = field(default_factory=dict)
    session: str | None = None
    config_dir: Path | None = None
    # What the sandbox mounts beside the job's directory (its git dir, the user's objects).
    mounts: tuple[PlaceMount, ...] = ()
    # Where the egress proxy reports a refused connection (thread-safe), and whom it asks.
    on_blocked: Callable[[NetworkBlocked], None] | None = field(default=None, compare=False)
    ask_network: AskNetwork | None = field(default=None, compare=False)


@dataclass
class PreparedLaunch:
    """A launch its backend has made ready; backends that plan more subclass it."""

    spec: LaunchSpec


def build_launch(options: RunOptions, prompt: str, *, workspace: Path, cwd: Path, job_id: str,
                 env: Mapping[str, str] | None = None, resume: str | None = None,
                 mounts: tuple[PlaceMount, ...] = ()) -> LaunchSpec:
    """The claude run for `prompt` with `options`, working in `cwd` (blocking: a system prompt
    may name a file of the workspace)."""
    argv = build_argv(
        options,
        prompt,
        sandboxed=options.docker is not None,
        system=resolve_text_or_file(options.system, workspace),
        append_system=resolve_text_or_file(options.append_system, workspace),
        resume=options.resume or resume,
    )
    return LaunchSpec(argv=argv, cwd=cwd, workspace=workspace, options=options, job_id=job_id,
                      env=dict(env or {}), session=options.session, mounts=mounts)
