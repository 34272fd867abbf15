"""Line hunks between two texts, as LSP edits, and their rebase onto a text edited meanwhile.

A hunk replaces the base lines [start, end) with new lines (terminators included), so applying
the hunks reproduces the new text byte for byte: CRLF, lone CR and a missing final newline are
kept because lines are compared with their terminators.
"""

from __future__ import annotations

import difflib
from dataclasses import dataclass, field

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


YOURS_MARK = "<<<<<<< yours (the editor)"
SPLIT_MARK = "======="
CLAUDE_MARK = ">>>>>>> Claude"


@dataclass(frozen=True)
class Conflict:
    """Lines [start, end) of the user's text that both the user and Claude changed: the user's
    version of them (`yours`) and Claude's version of the same base lines (`claude`)."""

    start: int
    end: int
    yours: tuple[str, ...]
    claude: tuple[str, ...]
    eol: str = "\n"

    def marked(self) -> Hunk:
        """A hunk replacing the lines with both versions between git-style conflict markers
        (in the text's own line terminator; an unterminated last line stays unterminated)."""
        eol = self.eol
        ends_open = bool(self.yours) and strip_eol(self.yours[-1]) == self.yours[-1]

        def closed(lines: tuple[str, ...]) -> list[str]:
            return [line if strip_eol(line) != line else line + eol for line in lines]

        return Hunk(self.start, self.end, (
            YOURS_MARK + eol, *closed(self.yours), SPLIT_MARK + eol, *closed(self.claude),
            CLAUDE_MARK + ("" if ends_open else eol)))


@dataclass(frozen=True)
class Rebased:
    hunks: list[Hunk]
    conflicts: int
    conflicted: list[Conflict] = field(default_factory=list)


def rebase(base: str, ours: str, theirs: str) -> Rebased:
    """Move the hunks base→ours onto `theirs` (base edited by someone else).

    A hunk applies when no line it replaces was changed in theirs (and theirs did not insert at
    the very point ours inserts). The other hunks are conflicts: each group of overlapping hunks
    and user changes becomes one `Conflict` holding both versions of the lines, for the user to
    resolve; `hunks` holds only the clean ones.
    """
    if theirs == base:
        return Rebased(diff_hunks(base, ours), 0)
    changes = diff_hunks(base, theirs)
    moved: list[Hunk] = []
    clashing: list[Hunk] = []
    for hunk in diff_hunks(base, ours):
        if any(_overlaps(hunk, change) for change in changes):
            clashing.append(hunk)
            continue
        moved.append(Hunk(hunk.start + _shift(changes, hunk), hunk.end + _shift(changes, hunk),
                          hunk.lines))
    groups = _groups(clashing, changes)
    return Rebased(moved, len(clashing), [_conflict(split_lines(base), group, mine, changes)
                                          for group, mine in groups])


def _shift(changes: list[Hunk], hunk: Hunk) -> int:
    return sum(len(c.lines) - (c.end - c.start) for c in changes if c.end <= hunk.start
               and not (c.start == c.end == hunk.start == hunk.end))


def _groups(clashing: list[Hunk], changes: list[Hunk]) -> list[tuple[list[Hunk], list[Hunk]]]:
    """Claude's clashing hunks grouped with the user's changes they overlap, transitively:
    [(the user's changes, Claude's hunks)], in line order."""
    groups: list[tuple[list[Hunk], list[Hunk]]] = []
    for hunk in clashing:
        touching = [c for c in changes if _overlaps(hunk, c)]
        merged = [g for g in groups if any(c in g[0] for c in touching)]
        theirs_part = sorted({c for g in merged for c in g[0]} | set(touching),
                             key=lambda h: (h.start, h.end))
        mine_part = sorted([h for g in merged for h in g[1]] + [hunk],
                           key=lambda h: (h.start, h.end))
        groups = [g for g in groups if g not in merged] + [(theirs_part, mine_part)]
    return sorted(groups, key=lambda g: g[1][0].start)


def _conflict(lines: list[str], group: list[Hunk], mine: list[Hunk],
              changes: list[Hunk]) -> Conflict:
    start = min(h.start for h in group + mine)
    end = max(h.end for h in group + mine)
    region = "".join(lines[start:end])

    def side(hunks: list[Hunk]) -> tuple[str, ...]:
        local = [Hunk(h.start - start, h.end - start, h.lines) for h in hunks]
        return tuple(split_lines(apply_hunks(region, local)))

    anchor = Hunk(start, start + 1, ())
    at = start + _shift([c for c in changes if c not in group], anchor)
    sample = next((line for line in lines if strip_eol(line) != line), "\n")
    return Conflict(at, at + (end - start) + sum(len(c.lines) - (c.end - c.start) for c in group),
                    side(group), side(mine), sample[len(strip_eol(sample)):])


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
