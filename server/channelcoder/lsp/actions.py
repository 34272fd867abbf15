"""Code actions: cheap `Command`s only (no Docker, disk or network in the handler).

Prompt files are read into a `PromptCatalog` at `initialized` and when files under
`.channelcoder/prompts/` change; the handler only reads memory.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from lsprotocol import types

from ..errors import ChannelCoderError
from .context import first_line

log = logging.getLogger(__name__)

PROMPTS_DIR = Path(".channelcoder") / "prompts"
KIND_FIX = types.CodeActionKind.QuickFix
KIND_EXPLAIN = "refactor.rewrite.channelcoder.explain"
KIND_IMPROVE = "refactor.rewrite.channelcoder.improve"
KIND_TESTS = "refactor.rewrite.channelcoder.tests"
KIND_PROMPT = "source.channelcoder.prompt"
ADVERTISED_KINDS = [types.CodeActionKind.QuickFix, types.CodeActionKind.RefactorRewrite,
                    types.CodeActionKind.Source]

EXPLAIN_PROMPT = "Explain what the selected code does, step by step, and point out anything surprising."
IMPROVE_PROMPT = ("Improve the selected code: make it clearer and more robust without changing "
                  "its behaviour.")
TESTS_PROMPT = ("Write tests for the selected code, next to the project's existing tests and "
                "in their style. Run them if you can.")


@dataclass(frozen=True)
class PromptEntry:
    title: str
    path: str  # workspace-relative


class PromptCatalog:
    def __init__(self) -> None:
        self.entries: list[PromptEntry] = []
        self.problems: list[str] = []

    def load(self, root: Path | None) -> None:
        """Read every titled prompt file (blocking: call from a worker thread)."""
        from ..prompts import load_prompt_file

        entries: list[PromptEntry] = []
        problems: list[str] = []
        folder = root / PROMPTS_DIR if root else None
        if root is not None and folder is not None and folder.is_dir():
            for path in sorted(folder.glob("*.md")):
                try:
                    prompt = load_prompt_file(path)
                except ChannelCoderError as exc:
                    problems.append(f"{path.name}: {exc.message}")
                    continue
                if prompt.title and prompt.title.strip():
                    entries.append(PromptEntry(prompt.title.strip(),
                                               path.relative_to(root).as_posix()))
        self.entries, self.problems = entries, problems


def _wanted(kind: str, only: list[str] | None) -> bool:
    if not only:
        return True
    return any(kind == prefix or kind.startswith(prefix + ".") for prefix in only)


def code_actions(params: types.CodeActionParams, catalog: PromptCatalog) -> list[types.CodeAction]:
    uri = params.text_document.uri
    only = [str(kind) for kind in params.context.only] if params.context.only else None
    rng = params.range
    actions: list[types.CodeAction] = []
    if _wanted(KIND_FIX, only):
        for diagnostic in params.context.diagnostics:
            title = f"Fix with Claude: {first_line(diagnostic.message)}"
            actions.append(types.CodeAction(
                title=title, kind=KIND_FIX, diagnostics=[diagnostic],
                command=types.Command(title=title, command="channelcoder.fix",
                                      arguments=[{"uri": uri, "diagnostic": diagnostic}])))
    if rng.start != rng.end:
        for kind, title, command, prompt in (
            (KIND_EXPLAIN, "Explain with Claude", "channelcoder.ask", EXPLAIN_PROMPT),
            (KIND_IMPROVE, "Improve with Claude", "channelcoder.run", IMPROVE_PROMPT),
            (KIND_TESTS, "Write tests with Claude", "channelcoder.run", TESTS_PROMPT),
        ):
            if _wanted(kind, only):
                actions.append(_action(title, kind, command,
                                       {"prompt": prompt, "uri": uri, "range": rng}))
    if _wanted(KIND_PROMPT, only):
        for entry in catalog.entries:
            title = f"Claude: {entry.title}"
            actions.append(_action(title, KIND_PROMPT, "channelcoder.run",
                                   {"promptFile": entry.path, "uri": uri, "range": rng}))
    return actions


def _action(title: str, kind: str, command: str, argument: dict[str, Any]) -> types.CodeAction:
    return types.CodeAction(title=title, kind=kind,
                            command=types.Command(title=title, command=command,
                                                  arguments=[argument]))
