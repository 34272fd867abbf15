"""The scripted model itself: SSE framing, tool turns, stateless turn choice, error injection."""

from __future__ import annotations

import http.client
import json
from pathlib import Path
from typing import Any

import pytest

from channelcoder.testing.fake_anthropic import (
    Failure,
    FakeAnthropic,
    Reply,
    Scenario,
    ToolCall,
    Turn,
    iter_sse,
)

TOOLS = [{"name": "Bash", "input_schema": {}}, {"name": "Read", "input_schema": {}}]


def post(api: FakeAnthropic, body: dict[str, Any]) -> tuple[int, bytes]:
    conn = http.client.HTTPConnection("127.0.0.1", api.port, timeout=10)
    try:
        conn.request("POST", "/v1/messages?beta=true", json.dumps(body),
                     {"content-type": "application/json"})
        response = conn.getresponse()
        return response.status, response.read()
    finally:
        conn.close()


def request(n_assistant: int = 0, stream: bool = True, tools: bool = True) -> dict[str, Any]:
    messages: list[dict[str, Any]] = [{"role": "user", "content": "go"}]
    for _ in range(n_assistant):
        messages += [{"role": "assistant", "content": [{"type": "text", "text": "."}]},
                     {"role": "user", "content": "next"}]
    body: dict[str, Any] = {"model": "m", "messages": messages, "stream": stream,
                            "system": [{"type": "text", "text": "SYS"}]}
    if tools:
        body["tools"] = TOOLS
    return body


def test_streamed_text_turn_is_well_framed_sse() -> None:
    with FakeAnthropic([Turn([Reply("hello world")], chunks=3)]) as api:
        status, body = post(api, request())
    events = list(iter_sse(body))
    names = [name for name, _ in events]
    assert status == 200
    assert names[0] == "message_start" and names[-2:] == ["message_delta", "message_stop"]
    assert names.count("content_block_delta") == 3
    text = "".join(d["delta"]["text"] for n, d in events if n == "content_block_delta")
    assert text == "hello world"
    assert events[-2][1]["delta"]["stop_reason"] == "end_turn"
    assert all(data["type"] == name for name, data in events)


def test_tool_call_streams_json_input_and_stops_for_tool_use() -> None:
    with FakeAnthropic([Turn([ToolCall("Bash", {"command": "ls -la"})], chunks=4)]) as api:
        _, body = post(api, request())
    events = list(iter_sse(body))
    start = next(d for n, d in events if n == "content_block_start")
    assert start["content_block"]["type"] == "tool_use" and start["content_block"]["name"] == "Bash"
    partial = "".join(d["delta"]["partial_json"] for n, d in events
                      if n == "content_block_delta")
    assert json.loads(partial) == {"command": "ls -la"}
    assert events[-2][1]["delta"]["stop_reason"] == "tool_use"


def test_turn_is_chosen_by_assistant_messages_in_the_request() -> None:
    with FakeAnthropic([Reply("first"), Reply("second")], ) as api:
        _, second = post(api, request(n_assistant=1, stream=False))
        _, first = post(api, request(n_assistant=0, stream=False))
        _, again = post(api, request(n_assistant=1, stream=False))
        _, after = post(api, request(n_assistant=5, stream=False))
    assert json.loads(first)["content"][0]["text"] == "first"
    assert json.loads(second)["content"][0]["text"] == json.loads(again)["content"][0]["text"]
    assert json.loads(second)["content"][0]["text"] == "second"
    assert json.loads(after)["content"][0]["text"] == "Done."


def test_side_requests_without_tools_do_not_consume_turns() -> None:
    with FakeAnthropic([Reply("the turn")]) as api:
        _, side = post(api, request(tools=False, stream=False))
        _, turn = post(api, request(stream=False))
    assert json.loads(side)["content"][0]["text"] == "Scripted side reply."
    assert json.loads(turn)["content"][0]["text"] == "the turn"
    assert [r.turn for r in api.requests] == [None, 0]


def test_fail_n_times_then_succeed() -> None:
    with FakeAnthropic([Turn([Reply("ok")], failure=Failure(529, 2))]) as api:
        codes = [post(api, request(stream=False))[0] for _ in range(3)]
        body = json.loads(post(api, request(stream=False))[1])
    assert codes == [529, 529, 200]
    assert body["content"][0]["text"] == "ok"


@pytest.mark.parametrize("status", [401, 429, 529])
def test_http_errors_have_the_api_error_shape(status: int) -> None:
    with FakeAnthropic([Turn([Reply("x")], failure=Failure(status, 0))]) as api:
        code, body = post(api, request())
    assert code == status
    assert json.loads(body)["type"] == "error"


def test_mid_stream_disconnect_cuts_the_stream_once() -> None:
    with FakeAnthropic([Turn([Reply("abcdef")], chunks=6, disconnect_after=3)]) as api:
        _, cut = post(api, request())
        _, whole = post(api, request())
    assert [n for n, _ in iter_sse(cut)] == ["message_start", "content_block_start",
                                             "content_block_delta"]
    assert [n for n, _ in iter_sse(whole)][-1] == "message_stop"


def test_requests_are_recorded_for_assertions() -> None:
    with FakeAnthropic([Reply("x")]) as api:
        post(api, request())
    (recorded,) = api.agent_requests()
    assert recorded.system == "SYS" and recorded.tools == ["Bash", "Read"]
    assert recorded.last_user_text() == "go"


def test_a_tool_the_request_does_not_offer_becomes_a_visible_note() -> None:
    with FakeAnthropic([ToolCall("Write", {"file_path": "/x", "content": ""})]) as api:
        _, body = post(api, request(stream=False))
    text = json.loads(body)["content"][0]["text"]
    assert "'Write' is not offered" in text and "Bash" in text


def test_scenario_from_yaml_and_json_files(tmp_path: Path) -> None:
    (tmp_path / "s.yaml").write_text(
        "turns:\n  - tool: Bash\n    input: {command: ls}\n  - text: bye\n    chunks: 2\n"
        "    fail: {status: 429, times: 1}\nfinal: end\n")
    scenario = Scenario.from_file(tmp_path / "s.yaml")
    assert isinstance(scenario.turns[0].blocks[0], ToolCall)
    assert scenario.turns[1].chunks == 2 and scenario.turns[1].failure == Failure(429, 1)
    assert scenario.final == "end"
    (tmp_path / "s.json").write_text(json.dumps([{"text": "hi"}]))
    assert Scenario.from_file(tmp_path / "s.json").turns[0].blocks == [Reply("hi")]
