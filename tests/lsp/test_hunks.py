"""Proposal edits reproduce the model's text exactly, in every position encoding (pure code)."""

from __future__ import annotations

from itertools import pairwise

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from channelcoder.lsp.hunks import (
    Conflict,
    Hunk,
    apply_hunks,
    diff_hunks,
    hunks_to_edits,
    rebase,
    text_edits,
)
from channelcoder.lsp.text import ENCODINGS, apply_edits, offset_at, split_lines

LINE = st.text(alphabet=st.sampled_from(["a", "b", "é", "😀", " ", "\t", "\f", "\u2028"]),
               max_size=6)
EOL = st.sampled_from(["\n", "\r\n", "\r", ""])
TEXT = st.lists(st.tuples(LINE, EOL), max_size=12).map(lambda parts: "".join(a + b for a, b in parts))


def test_lines_split_only_at_lsp_terminators() -> None:
    assert split_lines("a\r\nb\rc\nd\fe\u2028f") == ["a\r\n", "b\r", "c\n", "d\fe\u2028f"]
    assert split_lines("") == []
    assert split_lines("x\n") == ["x\n"]


@pytest.mark.parametrize("encoding,column", [("utf-8", 5), ("utf-16", 3), ("utf-32", 2)])
def test_columns_count_in_the_negotiated_encoding(encoding: str, column: int) -> None:
    text = "x\n😀a\n"
    assert offset_at(text, 1, column, encoding) == 4


def test_crlf_and_missing_final_newline_are_kept() -> None:
    old = "one\r\ntwo\r\nthree"
    new = "one\r\nTWO\r\nthree\r\nfour"
    for encoding in ENCODINGS:
        edits = text_edits(old, new, encoding)
        assert apply_edits(old, edits, encoding) == new
    assert text_edits(old, new, "utf-16")[0][0] == (1, 0)


def test_edits_are_minimal_per_hunk() -> None:
    old = "".join(f"line {i}\n" for i in range(100))
    new = old.replace("line 10\n", "line ten\n").replace("line 90\n", "")
    edits = text_edits(old, new, "utf-16")
    assert edits == [((10, 0), (11, 0), "line ten\n"), ((90, 0), (91, 0), "")]


@settings(max_examples=300, deadline=None)
@given(old=TEXT, new=TEXT, encoding=st.sampled_from(ENCODINGS))
def test_edits_turn_old_into_new_exactly(old: str, new: str, encoding: str) -> None:
    assert apply_edits(old, text_edits(old, new, encoding), encoding) == new


@settings(max_examples=300, deadline=None)
@given(base=TEXT, ours=TEXT, theirs=TEXT, encoding=st.sampled_from(ENCODINGS))
def test_rebase_keeps_their_edits_and_applies_ours_where_clean(
        base: str, ours: str, theirs: str, encoding: str) -> None:
    result = rebase(base, ours, theirs)
    rebased = apply_hunks(theirs, result.hunks)
    assert apply_edits(theirs, hunks_to_edits(theirs, result.hunks, encoding), encoding) == rebased
    if result.conflicts == 0 and theirs == base:
        assert rebased == ours
    if not diff_hunks(base, ours):
        assert rebased == theirs


def test_rebase_applies_a_hunk_away_from_the_users_edit() -> None:
    base = "".join(f"l{i}\n" for i in range(20))
    ours = base.replace("l15\n", "fifteen\n")
    theirs = "header\n" + base.replace("l2\n", "two\n")
    result = rebase(base, ours, theirs)
    assert result.conflicts == 0
    assert apply_hunks(theirs, result.hunks) == "header\n" + ours.replace("l2\n", "two\n")


def test_rebase_leaves_out_a_conflicting_hunk() -> None:
    base = "a\nb\nc\n"
    result = rebase(base, "a\nB\nc\n", "a\nbee\nc\n")
    assert result.conflicts == 1 and result.hunks == []


def test_a_conflict_keeps_both_versions_between_markers() -> None:
    base = "a\nb\nc\nd\ne\nf\n"
    theirs = "x\na\nbee\nc\nd\ne\nf\n"
    result = rebase(base, "a\nB\nc\nd\ne\nF\n", theirs)
    assert result.conflicts == 1 and result.hunks == [Hunk(6, 7, ("F\n",))]
    assert result.conflicted == [Conflict(2, 3, ("bee\n",), ("B\n",), "\n")]
    marked = apply_hunks(theirs, result.hunks + [c.marked() for c in result.conflicted])
    assert marked == ("x\na\n<<<<<<< yours (the editor)\nbee\n=======\nB\n>>>>>>> Claude\n"
                      "c\nd\ne\nF\n")


def test_conflict_markers_keep_crlf_and_an_unterminated_last_line() -> None:
    result = rebase("a\r\nb", "a\r\nB", "a\r\nbee")
    (conflict,) = result.conflicted
    assert apply_hunks("a\r\nbee", [conflict.marked()]) == (
        "a\r\n<<<<<<< yours (the editor)\r\nbee\r\n=======\r\nB\r\n>>>>>>> Claude")


@settings(max_examples=300, deadline=None)
@given(base=TEXT, ours=TEXT, theirs=TEXT)
def test_every_conflict_is_the_users_lines_and_claudes_version_of_them(
        base: str, ours: str, theirs: str) -> None:
    result = rebase(base, ours, theirs)
    assert len(result.conflicted) <= result.conflicts
    assert bool(result.conflicted) == bool(result.conflicts)
    clean = apply_hunks(theirs, result.hunks)
    keep_yours = [Hunk(c.start, c.end, c.yours) for c in result.conflicted]
    assert apply_hunks(theirs, result.hunks + keep_yours) == clean
    spans = sorted((h.start, h.end) for h in result.hunks + keep_yours)
    assert all(a[1] <= b[0] for a, b in pairwise(spans)), "edits never overlap"
    if theirs == base or not result.conflicts:
        assert result.conflicted == []
