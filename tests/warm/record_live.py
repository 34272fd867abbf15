"""Record a live claude process's stdout (three turns, the last interrupted) against the model.

Usage: .venv/bin/python -m tests.warm.record_live [CLAUDE_BINARY]
Writes tests/fixtures/stream/live_turns.jsonl and .meta.json, replayed by
tests/warm/test_live_unit.py. Re-record after bumping the pinned CLI version.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

from channelcoder.claude.argv import INTERRUPT, user_turn
from channelcoder.testing.fake_anthropic import FakeAnthropic, Reply, Scenario, ToolCall, Turn
from tests.fixtures.record_fixtures import HERE, default_claude

FLAGS = ["-p", "--input-format", "stream-json", "--output-format", "stream-json", "--verbose",
         "--include-partial-messages", "--permission-mode", "bypassPermissions"]


def main() -> None:
    claude = sys.argv[1] if len(sys.argv) > 1 else default_claude()
    work = Path(tempfile.mkdtemp(prefix="cc-record-"))
    cfg = Path(tempfile.mkdtemp(prefix="cc-record-cfg-"))
    scenario = Scenario([ToolCall("Bash", {"command": "echo live"}), Reply("First turn done."),
                         Turn([Reply("Second turn.")], chunks=2),
                         Turn([Reply("never finished " * 40)], chunks=40, delay=0.1)])
    with FakeAnthropic(scenario) as api:
        env = {k: v for k, v in os.environ.items() if not k.startswith(("CLAUDE", "ANTHROPIC"))}
        env.update(api.env(), CLAUDE_CONFIG_DIR=str(cfg), DISABLE_AUTOUPDATER="1",
                   CLAUDE_CODE_DISABLE_NONESSENTIAL_TRAFFIC="1", IS_SANDBOX="1",
                   CLAUDE_CODE_MAX_RETRIES="0")
        proc = subprocess.Popen([claude, *FLAGS], cwd=work, env=env, stdin=subprocess.PIPE,
                                stdout=subprocess.PIPE)
        assert proc.stdin is not None and proc.stdout is not None
        out: list[bytes] = []

        def send(message: dict[str, object]) -> None:
            assert proc.stdin is not None
            proc.stdin.write((json.dumps(message) + "\n").encode())
            proc.stdin.flush()

        for prompt in ("first", "second", "third"):
            send(user_turn(prompt))
            interrupted = False
            for line in proc.stdout:
                out.append(line)
                if prompt == "third" and b'"text_delta"' in line and not interrupted:
                    send(INTERRUPT)
                    interrupted = True
                if line.startswith(b'{"type":"result"'):
                    break
        proc.stdin.close()
        proc.wait(timeout=30)
    text = b"".join(out).decode().replace(str(work), "/work/project").replace(str(cfg), "/config")
    (HERE / "live_turns.jsonl").write_text(text)
    meta = {"argv": ["claude", *FLAGS], "turns": ["first", "second", "third (interrupted)"],
            "recorded_with": "tests/warm/record_live.py"}
    (HERE / "live_turns.meta.json").write_text(json.dumps(meta, indent=2) + "\n")
    print(f"live_turns: {len(text.splitlines())} lines")
    shutil.rmtree(work, ignore_errors=True)
    shutil.rmtree(cfg, ignore_errors=True)


if __name__ == "__main__":
    main()
