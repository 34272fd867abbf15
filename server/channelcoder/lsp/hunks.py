"""Line hunks between two texts, as LSP edits, and their rebase onto a text edited meanwhile.

A hunk replaces the base lines [start, end) with new lines (terminators included), so applying
the hunks reproduces the new text byte for byte: CRLF, lone CR and a missing final newline are
kept because lines are compared with their terminators.
"""

from __future__ import annotations

import difflib
from dataclasses import dataclass

from .text import end_position, split_lines, strip_eol, units

Position = tuple[int, int]
Edit = tuple[Position, Position, str]


@dataclass(frozen=True)
class Hunk:
    start: int
    end: int
    lines: tuple[str, ...]

    @property
    def text(self) -> str:
        return "".join(self.lines)


def diff_hunks(old: str, new: str) -> list[Hunk]:
    """The smallest line hunks that turn `old` into `new`."""
    a, b = split_lines(old), split_lines(new)
    prefix = 0
    while prefix < len(a) and prefix < len(b) and a[prefix] == b[prefix]:
        prefix += 1
    suffix = 0
    while (suffix < len(a) - prefix and suffix < len(b) - prefix
           and a[len(a) - 1 - suffix] == b[len(b) - 1 - suffix]):
        suffix += 1
    a_mid, b_mid = a[prefix : len(a) - suffix], b[prefix : len(b) - suffix]
    matcher = difflib.SequenceMatcher(None, a_mid, b_mid, autojunk=False)
    hunks: list[Hunk] = []
    for tag, i1, i2, j1, j2 in matcher.get_opcodes():
        if tag != "equal":
            hunks.append(Hunk(prefix + i1, prefix + i2, tuple(b_mid[j1:j2])))
    return hunks


def hunk_range(lines: list[str], hunk: Hunk, text: str, encoding: str) -> tuple[Position, Position]:
    """The LSP range of base lines [start, end) in a text split into `lines`."""
    start: Position = (hunk.start, 0)
    if hunk.end < len(lines):
        end: Position = (hunk.end, 0)
    elif lines and strip_eol(lines[-1]) == lines[-1]:
        end = (len(lines) - 1, units(lines[-1], encoding))
        if hunk.start == len(lines):
            start = end
    else:
        end = end_position(text, encoding)
    return start, end


def hunks_to_edits(text: str, hunks: list[Hunk], encoding: str) -> list[Edit]:
    lines = split_lines(text)
    edits: list[Edit] = []
    for hunk in hunks:
        start, end = hunk_range(lines, hunk, text, encoding)
        edits.append((start, end, hunk.text))
    return edits


def text_edits(old: str, new: str, encoding: str) -> list[Edit]:
    """Minimal per-hunk edits turning `old` into `new`, positions in `encoding`."""
    return hunks_to_edits(old, diff_hunks(old, new), encoding)


@dataclass(frozen=True)
class Rebased:
    hunks: list[Hunk]
    conflicts: int


def rebase(base: str, ours: str, theirs: str) -> Rebased:
    """Move the hunks base→ours onto `theirs` (base edited by someone else).

    A hunk applies when no line it replaces was changed in theirs (and theirs did not insert at
    the very point ours inserts); other hunks are conflicts and are left out.
    """
    if theirs == base:
        return Rebased(diff_hunks(base, ours), 0)
    changes = diff_hunks(base, theirs)
    moved: list[Hunk] = []
    conflicts = 0
    for hunk in diff_hunks(base, ours):
        if any(_overlaps(hunk, change) for change in changes):
            conflicts += 1
            continue
        shift = sum(len(c.lines) - (c.end - c.start) for c in changes if c.end <= hunk.start
                    and not (c.start == c.end == hunk.start == hunk.end))
        moved.append(Hunk(hunk.start + shift, hunk.end + shift, hunk.lines))
    return Rebased(moved, conflicts)


def _overlaps(ours: Hunk, theirs: Hunk) -> bool:
    if ours.start == ours.end and theirs.start == theirs.end:
        return ours.start == theirs.start
    if ours.start == ours.end:
        return theirs.start < ours.start < theirs.end
    if theirs.start == theirs.end:
        return ours.start < theirs.start < ours.end
    return theirs.start < ours.end and ours.start < theirs.end


def apply_hunks(text: str, hunks: list[Hunk]) -> str:
    """Apply hunks (base line coordinates of `text`) directly; used to check a rebase."""
    lines = split_lines(text)
    out: list[str] = []
    cursor = 0
    for hunk in sorted(hunks, key=lambda h: (h.start, h.end)):
        out += lines[cursor : hunk.start]
        out += hunk.lines
        cursor = hunk.end
    out += lines[cursor:]
    return "".join(out)
