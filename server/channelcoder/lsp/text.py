"""Text the LSP way: lines end at \\r\\n, \\r or \\n only; columns count in the negotiated encoding.

`str.splitlines()` also splits at \\f, \\v, \\x1c, \\u2028 … which an editor does not, so every
line number the server sends is computed here.
"""

from __future__ import annotations

import re

_EOL = re.compile(r"\r\n|\r|\n")
ENCODINGS = ("utf-8", "utf-16", "utf-32")


def split_lines(text: str) -> list[str]:
    """The lines of `text`, each with its terminator; an unterminated last line kept as is."""
    lines: list[str] = []
    start = 0
    for match in _EOL.finditer(text):
        lines.append(text[start : match.end()])
        start = match.end()
    if start < len(text):
        lines.append(text[start:])
    return lines


def strip_eol(line: str) -> str:
    if line.endswith("\r\n"):
        return line[:-2]
    if line.endswith(("\n", "\r")):
        return line[:-1]
    return line


def units(text: str, encoding: str) -> int:
    """The length of `text` in the code units of a position encoding."""
    if encoding == "utf-8":
        return len(text.encode("utf-8"))
    if encoding == "utf-16":
        return len(text) + sum(1 for char in text if ord(char) > 0xFFFF)
    return len(text)


def column_to_index(line: str, column: int, encoding: str) -> int:
    """The str index in `line` (no terminator) of a column in code units; clamped to the end."""
    if encoding == "utf-32":
        return min(column, len(line))
    count = 0
    for index, char in enumerate(line):
        if count >= column:
            return index
        count += units(char, encoding)
    return len(line)


def end_position(text: str, encoding: str) -> tuple[int, int]:
    """The (line, column) just past the last character of `text`."""
    lines = split_lines(text)
    if not lines:
        return (0, 0)
    last = lines[-1]
    if strip_eol(last) != last:
        return (len(lines), 0)
    return (len(lines) - 1, units(last, encoding))


def offset_at(text: str, line: int, column: int, encoding: str) -> int:
    """The str offset of an LSP position in `text`. Raises ValueError past the end."""
    lines = split_lines(text)
    if line < 0 or column < 0:
        raise ValueError("negative position")
    if line >= len(lines):
        if (line, column) == end_position(text, encoding):
            return len(text)
        raise ValueError(f"line {line} is past the end of the document ({len(lines)} lines)")
    start = sum(len(item) for item in lines[:line])
    content = strip_eol(lines[line])
    if column > units(content, encoding):
        raise ValueError(f"column {column} is past the end of line {line}")
    return start + column_to_index(content, column, encoding)


def apply_edits(text: str, edits: list[tuple[tuple[int, int], tuple[int, int], str]],
                encoding: str) -> str:
    """Apply non-overlapping LSP edits ((start), (end), new_text) to `text`, as an editor does."""
    spans = [(offset_at(text, *start, encoding), offset_at(text, *end, encoding), new)
             for start, end, new in edits]
    spans.sort(key=lambda span: (span[0], span[1]))
    out: list[str] = []
    cursor = 0
    for begin, finish, new in spans:
        if begin < cursor:
            raise ValueError("overlapping edits")
        out.append(text[cursor:begin])
        out.append(new)
        cursor = finish
    out.append(text[cursor:])
    return "".join(out)
