"""A live process's output and argv, on output recorded from the pinned CLI (no engine needed).

tests/fixtures/stream/live_turns.jsonl is three turns of one `--input-format stream-json`
process (tests/warm/record_live.py): a tool call and a reply, a streamed reply, and a turn
interrupted with the control message.
"""

from __future__ import annotations

import json
from pathlib import Path

from channelcoder.claude.argv import INTERRUPT, build_argv
from channelcoder.claude.events import Init, Result, ToolResult
from channelcoder.claude.parse import StreamParser
from channelcoder.config import build_options
from channelcoder.sandbox.warm.live import LiveProcess, TurnSplitter, split_argv

LIVE = Path(__file__).parents[1] / "fixtures" / "stream" / "live_turns.jsonl"


def turns() -> list[bytes]:
    """The recorded stdout cut into turns the way a live turn is cut: after each result."""
    data = LIVE.read_bytes()
    out: list[bytes] = []
    while data:
        split = TurnSplitter()
        part = split.feed(data)
        assert split.done, "a turn without a result line"
        out.append(part)
        data = data[len(part):]
    return out


def test_every_turn_prints_init_again_and_ends_with_its_own_result() -> None:
    parsed = []
    for turn in turns():
        parser = StreamParser()
        parsed.append(parser.feed(turn) + parser.close())
    assert len(parsed) == 3
    inits = [[e for e in events if isinstance(e, Init)] for events in parsed]
    assert all(len(found) == 1 for found in inits)
    assert len({found[0].session_id for found in inits}) == 1  # one conversation
    results = [events[-1] for events in parsed]
    assert all(isinstance(r, Result) for r in results)
    first, second, third = results
    assert isinstance(first, Result) and first.ok and first.text == "First turn done."
    assert any(isinstance(e, ToolResult) and e.output.strip() == "live" for e in parsed[0])
    assert isinstance(second, Result) and second.text == "Second turn."
    # the interrupted turn: the control response is skipped, the result is not a success
    assert isinstance(third, Result) and not third.ok
    assert third.subtype == "error_during_execution"


def test_the_interrupt_shape_the_cli_answers() -> None:
    responses = [json.loads(line) for line in LIVE.read_text().splitlines()
                 if line.startswith('{"type":"control_response"')]
    assert responses == [{"type": "control_response", "response": {
        "subtype": "success", "request_id": INTERRUPT["request_id"]}}]


def test_a_turn_ends_at_its_result_wherever_the_reads_cut_the_bytes() -> None:
    data = LIVE.read_bytes()
    first = turns()[0]
    for size in (1, 7, 64, 4096):
        split = TurnSplitter()
        got = b"".join(split.feed(data[i:i + size]) for i in range(0, len(data), size))
        assert got == first and split.done, size
        assert split.result is not None and split.result["result"] == "First turn done."


def test_a_live_argv_keeps_the_flags_and_resumes_before_variadic_tool_rules() -> None:
    options = build_options({"tools": ["Read", "Bash(git log:*)"], "model": "sonnet"})
    one_shot = build_argv(options, "-- a prompt with dashes", sandboxed=True, resume="abc-123")
    live = split_argv(one_shot)
    assert live.prompt == "-- a prompt with dashes" and live.resume == "abc-123"
    spawned = live.spawn()
    assert spawned[:7] == ["claude", "-p", "--output-format", "stream-json", "--verbose",
                           "--resume", "abc-123"]
    assert "--input-format" in spawned and "--" not in spawned
    assert spawned.index("--resume") < spawned.index("--allowedTools")
    assert spawned[-2:] == ["Read", "Bash(git log:*)"]
    # the same options without resume or prompt are the same live process
    fresh = split_argv(build_argv(options, "another prompt", sandboxed=True))
    assert fresh.key == live.key and fresh.resume is None
    other = split_argv(build_argv(options.replace(model="opus"), "x", sandboxed=True))
    assert other.key != live.key


def test_idle_sees_a_result_line_of_any_length(tmp_path: Path) -> None:
    live = LiveProcess(tmp_path, "l-test", "container")
    live.host.mkdir(parents=True)
    out = live.host / "out"
    recorded = LIVE.read_bytes()
    first = turns()[0]
    before_result = first[:first.index(b'{"type":"result"')]
    out.write_bytes(before_result)
    assert not live.idle()  # mid-turn: the last line is not the result
    answer = "word " * 100_000  # a final answer far longer than any tail read
    result = json.dumps({"type": "result", "subtype": "success", "is_error": False,
                         "result": answer}, separators=(",", ":"))  # as the CLI prints it
    out.write_bytes(before_result + result.encode() + b"\n")
    assert live.idle()
    out.write_bytes(recorded)  # the interrupted turn: result, then the control response
    assert live.idle()
    out.write_bytes(b"")
    assert live.idle()  # nothing printed yet
