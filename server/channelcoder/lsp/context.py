"""What the editor contributes to a job: the document, the selection, the diagnostics.

Arguments arrive as untrusted JSON; everything here validates them and raises `UsageError`
(a JSON-RPC InvalidParams error) with a hint, never a traceback.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import unquote, urlparse

from lsprotocol import types
from lsprotocol.converters import get_converter

from ..errors import UsageError
from .text import offset_at, split_lines, strip_eol

MAX_SELECTION_CHARS = 20_000
FIX_CONTEXT_LINES = 3


@dataclass
class Document:
    """One file as the job should see it (an open buffer's text wins over the disk)."""

    uri: str
    path: Path
    root: Path
    text: str
    version: int | None = None
    unsaved: bool = False  # an open buffer whose text differs from the file on disk

    @property
    def rel(self) -> str:
        return self.path.relative_to(self.root).as_posix()


def differs_from_disk(path: Path, text: str) -> bool:
    """Blocking: does `text` differ from the file's content?"""
    try:
        return path.read_bytes().decode("utf-8") != text
    except (OSError, UnicodeDecodeError):
        return True


@dataclass
class Selection:
    start: tuple[int, int]
    end: tuple[int, int]
    text: str

    @property
    def empty(self) -> bool:
        return self.start == self.end


@dataclass
class EditorContext:
    document: Document | None = None
    selection: Selection | None = None
    diagnostics: list[types.Diagnostic] = field(default_factory=list)


def uri_to_path(uri: Any, roots: Sequence[Path]) -> tuple[Path, Path]:
    """(workspace root, absolute path) of a file: URI inside one of `roots`."""
    if not isinstance(uri, str) or not uri:
        raise UsageError(f"'uri' must be a file URI string, got {_kind(uri)}",
                         hint="pass the document's URI, e.g. file:///home/me/project/app.py")
    parsed = urlparse(uri)
    if parsed.scheme != "file":
        raise UsageError(f"only file: URIs are supported, got {uri!r}",
                         hint="save the document to a file in the workspace first")
    path = Path(unquote(parsed.path))
    if not path.is_absolute():
        raise UsageError(f"the URI {uri!r} has no absolute path")
    resolved = _normalize(path)
    for root in sorted(roots, key=lambda r: len(str(r)), reverse=True):
        if resolved == root or root in resolved.parents:
            return root, resolved
    raise UsageError(f"{uri} is outside the workspace",
                     hint="open the file's project as the workspace folder")


def _normalize(path: Path) -> Path:
    try:
        return path.resolve()
    except (OSError, RuntimeError):
        return path


def parse_range(value: Any, text: str, encoding: str) -> Selection:
    """A JSON Range checked against the document text."""
    start = _position(value, "start") if isinstance(value, Mapping) else None
    end = _position(value, "end") if isinstance(value, Mapping) else None
    if start is None or end is None:
        raise UsageError("'range' must look like {\"start\": {\"line\": 0, \"character\": 0}, "
                         "\"end\": {…}}", hint="pass the selection as an LSP Range")
    if end < start:
        raise UsageError("'range' ends before it starts")
    try:
        begin = offset_at(text, *start, encoding)
        finish = offset_at(text, *end, encoding)
    except ValueError as exc:
        raise UsageError(f"the range is past the end of the document: {exc}",
                         hint="the document changed; select again") from None
    return Selection(start, end, text[begin:finish])


def _position(value: Mapping[str, Any], key: str) -> tuple[int, int] | None:
    point = value.get(key)
    if not isinstance(point, Mapping):
        return None
    line, character = point.get("line"), point.get("character")
    if not isinstance(line, int) or not isinstance(character, int):
        return None
    if not _uint(line) or not _uint(character):
        return None
    return (line, character)


def _uint(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool) and 0 <= value < 2**31


def _kind(value: Any) -> str:
    return "nothing" if value is None else type(value).__name__


def parse_diagnostic(value: Any) -> types.Diagnostic:
    if not isinstance(value, Mapping) or not isinstance(value.get("message"), str):
        raise UsageError("'diagnostic' must be an LSP Diagnostic with a range and a message",
                         hint="pass one of the diagnostics the editor shows")
    try:
        diagnostic = get_converter().structure(dict(value), types.Diagnostic)
    except Exception as exc:
        raise UsageError(f"'diagnostic' is not a valid LSP Diagnostic: {_first_line(exc)}",
                         hint="pass one of the diagnostics the editor shows") from None
    assert isinstance(diagnostic, types.Diagnostic)
    return diagnostic


def _first_line(exc: Exception) -> str:
    return (str(exc).splitlines() or [type(exc).__name__])[0][:200]


def in_range(diagnostic: types.Diagnostic, selection: Selection) -> bool:
    start = (diagnostic.range.start.line, diagnostic.range.start.character)
    end = (diagnostic.range.end.line, diagnostic.range.end.character)
    if selection.empty:
        return start <= selection.start <= end
    if start == end:
        return selection.start <= start <= selection.end
    return start < selection.end and selection.start < end


# ---------------------------------------------------------------------------------------------
# Prompt text


def context_block(context: EditorContext) -> str:
    """The editor context appended to a prompt (empty when there is none)."""
    document = context.document
    if document is None:
        return ""
    lines = [f"File: {document.rel}" + (" (with unsaved changes in the editor)"
                                        if document.unsaved else "")]
    selection = context.selection
    if selection is not None and not selection.empty:
        first, last = selection.start[0] + 1, selection.end[0] + (1 if selection.end[1] else 0)
        text = selection.text
        if len(text) > MAX_SELECTION_CHARS:
            text = text[:MAX_SELECTION_CHARS] + "\n… (selection cut)"
        lines.append(f"Selected lines {first}-{max(first, last)}:")
        lines.append(_fence(text, document.path.suffix))
    elif selection is not None:
        lines.append(f"Cursor at line {selection.start[0] + 1}")
    if context.diagnostics:
        lines.append("Diagnostics there:")
        lines += [f"- {describe_diagnostic(d)}" for d in context.diagnostics]
    return "\n\nEditor context:\n" + "\n".join(lines)


def describe_diagnostic(diagnostic: types.Diagnostic) -> str:
    severity = {1: "error", 2: "warning", 3: "info", 4: "hint"}.get(
        int(diagnostic.severity) if diagnostic.severity else 1, "error")
    origin = " ".join(str(x) for x in (diagnostic.source, diagnostic.code) if x not in (None, ""))
    where = f"line {diagnostic.range.start.line + 1}, column {diagnostic.range.start.character + 1}"
    return f"{where}: {severity}: {diagnostic.message}" + (f" [{origin}]" if origin else "")


def fix_prompt(document: Document, diagnostic: types.Diagnostic) -> str:
    lines = split_lines(document.text)
    first = max(0, diagnostic.range.start.line - FIX_CONTEXT_LINES)
    last = min(len(lines), diagnostic.range.end.line + FIX_CONTEXT_LINES + 1)
    excerpt = "\n".join(f"{n + 1:>5} | {strip_eol(lines[n])}" for n in range(first, last))
    return (f"Fix this problem in {document.rel}, {describe_diagnostic(diagnostic)}\n\n"
            f"{_fence(excerpt, '')}\n\nMake the smallest change that fixes it; do not change "
            "anything else.")


def _fence(text: str, suffix: str) -> str:
    fence = "```"
    while fence in text:
        fence += "`"
    return f"{fence}{suffix.lstrip('.')}\n{text}\n{fence}"


def first_line(text: str, limit: int = 80) -> str:
    line = (text.strip().splitlines() or [""])[0]
    return line if len(line) <= limit else line[: limit - 1] + "…"
