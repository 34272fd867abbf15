"""The stream-json parser on real output recorded from the pinned CLI (tests/fixtures/stream)."""

from __future__ import annotations

import json
import random
from pathlib import Path

import pytest

from channelcoder.claude.events import (
    ApiRetry,
    Init,
    Result,
    Text,
    TextDelta,
    ToolResult,
    ToolUse,
)
from channelcoder.claude.parse import StreamParser, summarize_tool

STREAM = Path(__file__).parents[1] / "fixtures" / "stream"
FIXTURES = sorted(p.stem for p in STREAM.glob("*.jsonl"))


def parse_all(data: bytes, chunk_at: list[int] | None = None) -> list[object]:
    parser = StreamParser()
    events: list[object] = []
    start = 0
    for cut in [*(chunk_at or []), len(data)]:
        events += parser.feed(data[start:cut])
        start = cut
    return events + parser.close()


def fixture(name: str) -> bytes:
    return (STREAM / f"{name}.jsonl").read_bytes()


def test_fixtures_were_recorded_with_the_pinned_version() -> None:
    version = (Path(__file__).parents[2] / "server/channelcoder/sandbox/image/"
               "claude-code.version").read_text().strip()
    for name in FIXTURES:
        init = next(e for e in parse_all(fixture(name)) if isinstance(e, Init))
        assert init.claude_version == version, name


def test_text_only_job_streams_deltas_then_the_whole_block() -> None:
    events = parse_all(fixture("text_only"))
    assert isinstance(events[0], Init) and events[0].session_id
    deltas = [e.text for e in events if isinstance(e, TextDelta)]
    assert len(deltas) == 3 and "".join(deltas) == "Hello from the scripted model."
    text = next(e for e in events if isinstance(e, Text))
    assert text.streamed and text.text == "Hello from the scripted model."
    result = events[-1]
    assert isinstance(result, Result) and result.ok and result.num_turns == 1
    assert result.session_id == events[0].session_id and result.cost_usd > 0


def test_tool_calls_and_results_with_one_line_summaries() -> None:
    events = parse_all(fixture("tools_edit"))
    uses = [e for e in events if isinstance(e, ToolUse)]
    assert [u.summary for u in uses] == ["$ echo hi from bash", "Read app.py", "Edit app.py"]
    results = [e for e in events if isinstance(e, ToolResult)]
    assert [r.tool_use_id for r in results] == [u.id for u in uses]
    assert results[0].output == "hi from bash" and not results[0].is_error
    final = events[-1]
    assert isinstance(final, Result) and final.ok and final.num_turns == 4


def test_text_without_partial_messages_is_not_marked_streamed() -> None:
    events = parse_all(fixture("no_partial"))
    assert not any(isinstance(e, TextDelta) for e in events)
    text = next(e for e in events if isinstance(e, Text))
    assert text.text == "Plain answer." and not text.streamed


def test_authentication_failure_shape() -> None:
    result = parse_all(fixture("auth_401"))[-1]
    assert isinstance(result, Result) and not result.ok
    assert result.api_error_status == 401
    assert result.error is not None and "Invalid API key" in result.error


def test_max_turns_shape() -> None:
    result = parse_all(fixture("max_turns"))[-1]
    assert isinstance(result, Result) and not result.ok
    assert result.subtype == "error_max_turns" and "turn limit" in (result.error or "")


def test_api_error_reported_as_success_subtype_is_still_a_failure() -> None:
    result = parse_all(fixture("overloaded_529"))[-1]
    assert isinstance(result, Result) and result.subtype == "success" and not result.ok
    assert "529" in (result.error or "")


def test_permission_denials_carry_the_rule_that_would_allow_them() -> None:
    result = parse_all(fixture("permission_denied"))[-1]
    assert isinstance(result, Result) and result.ok
    (denial,) = result.permission_denials
    assert denial.tool_name == "Bash" and denial.hint == "--tools 'Bash(touch:*)'"


@pytest.mark.parametrize("name", ["text_only", "auth_401", "max_turns", "no_partial",
                                  "permission_denied"])
def test_every_byte_boundary_gives_the_same_events(name: str) -> None:
    data = fixture(name)
    whole = parse_all(data)
    for cut in range(1, len(data)):
        assert parse_all(data, [cut]) == whole, f"split at byte {cut}"


def test_sampled_boundaries_in_a_larger_fixture() -> None:
    data = fixture("tools_edit")
    whole = parse_all(data)
    rng = random.Random(7)
    for _ in range(200):
        cuts = sorted(rng.sample(range(1, len(data)), 5))
        assert parse_all(data, cuts) == whole


def big_tool_result_line(size: int) -> bytes:
    payload = ("x" * 99 + "\n") * (size // 100)
    line = {"type": "user", "message": {"role": "user", "content": [
        {"type": "tool_result", "tool_use_id": "t1", "content": payload, "is_error": False}]}}
    return json.dumps(line).encode() + b"\n"


def test_a_5mb_tool_result_survives_sampled_splits_in_linear_time() -> None:
    line = big_tool_result_line(5 * 1024 * 1024)
    data = fixture("text_only").replace(b'{"type":"result"', line + b'{"type":"result"', 1)
    rng = random.Random(11)
    for _ in range(5):
        cuts = sorted(rng.sample(range(1, len(data)), 40))
        events = parse_all(data, cuts)
        (result,) = [e for e in events if isinstance(e, ToolResult)]
        assert result.output.startswith("x" * 99) and "more characters" in result.output
        assert isinstance(events[-1], Result)
    parser = StreamParser()
    for start in range(0, len(data), 4096):
        parser.feed(data[start : start + 4096])
    assert parser.bytes_scanned <= len(data) * 1.01


def test_garbage_and_unknown_lines_are_skipped() -> None:
    garbage = b"\n".join([
        b"not json at all", b"[1, 2, 3]", b'{"type": "mystery", "x": 1}', b"", b"   ",
        b'{"type": "assistant", "message": "not an object"}', b'{"type": "result", "is_err',
        b'{"type":"system","subtype":"status","status":"requesting"}', b"\xff\xfe\x00",
    ]) + b"\n"
    parser = StreamParser()
    events = parser.feed(garbage + fixture("text_only"))
    assert isinstance(events[-1], Result) and events[-1].ok
    assert parser.skipped_lines >= 5


def test_lines_split_on_newline_only() -> None:
    text = "a\u2028b\u0085c\rd"
    line = json.dumps({"type": "assistant", "message": {"id": "m", "content": [
        {"type": "text", "text": text}]}}, ensure_ascii=False).encode() + b"\n"
    (event,) = StreamParser().feed(line)
    assert isinstance(event, Text) and event.text == text


def test_over_long_lines_are_dropped_without_losing_the_next_line() -> None:
    parser = StreamParser(max_line=1000)
    events = parser.feed(b"x" * 600)
    events += parser.feed(b"y" * 600 + b"\n" + fixture("no_partial"))
    assert isinstance(events[-1], Result)
    assert parser.skipped_lines == 1


def test_subagent_text_is_not_shown_but_its_tool_calls_are_marked() -> None:
    line = json.dumps({"type": "assistant", "parent_tool_use_id": "toolu_1", "message": {
        "id": "m", "content": [{"type": "text", "text": "inner"},
                               {"type": "tool_use", "id": "t", "name": "Grep",
                                "input": {"pattern": "TODO", "path": "/w/src"}}]}}).encode()
    events = StreamParser().feed(line + b"\n")
    assert len(events) == 1 and isinstance(events[0], ToolUse) and events[0].subagent


@pytest.mark.parametrize(("name", "tool_input", "summary"), [
    ("Bash", {"command": "pytest -q\necho done"}, "$ pytest -q …"),
    ("Edit", {"file_path": "/w/src/a.py"}, "Edit src/a.py"),
    ("Write", {"file_path": "/elsewhere/b.py"}, "Write /elsewhere/b.py"),
    ("Grep", {"pattern": "TODO", "path": "/w"}, "Grep TODO in /w"),
    ("WebFetch", {"url": "https://example.com", "prompt": "read"}, "WebFetch https://example.com"),
    ("Task", {"description": "explore the tests"}, "Task explore the tests"),
    ("Bash", {"command": "x" * 300}, "$ " + "x" * 99 + "…"),
])
def test_tool_summaries(name: str, tool_input: dict[str, str], summary: str) -> None:
    assert summarize_tool(name, tool_input, "/w") == summary


def test_each_api_retry_is_an_event_with_its_status_attempt_and_wait() -> None:
    retries = [e for e in parse_all(fixture("retry_401")) if isinstance(e, ApiRetry)]
    assert [(r.attempt, r.max_retries, r.status, r.error) for r in retries] == [
        (1, 2, 401, "authentication_failed"), (2, 2, 401, "authentication_failed")]
    assert all(0.1 < r.delay_s < 5 for r in retries)
    assert retries[0].describe().startswith(
        "the API answered 401 (authentication_failed); retry 1 of 2 in ")


def test_retries_that_end_in_an_answer_come_before_it() -> None:
    events = parse_all(fixture("retry_529_then_ok"))
    retries = [e for e in events if isinstance(e, ApiRetry)]
    assert [r.status for r in retries] == [529, 529]
    assert isinstance(events[-1], Result) and events[-1].text == "Answered after retries."
    assert events.index(retries[-1]) < events.index(events[-1])
