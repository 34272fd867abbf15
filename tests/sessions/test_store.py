"""The session store: JSON shape, atomic writes under a lock, turn serialization, remembered options."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import anyio
import pytest

from channelcoder import sessions
from channelcoder.config import DockerOptions, RunOptions, WorktreeOptions, build_options
from channelcoder.errors import SessionError, UsageError


def record_turn(name: str, prompt: str, session_id: str, workspace: Path) -> None:
    async def main() -> None:
        turn = await sessions.SessionTurn.begin(name, workspace)
        try:
            turn.record(prompt=prompt, options=RunOptions(), workspace=workspace, cwd=workspace,
                        session_id=session_id, text=f"re: {prompt}", ok=True, cost_usd=0.01)
        finally:
            turn.release()

    anyio.run(main)


def test_a_turn_is_stored_in_channelcoders_shape(tmp_path: Path) -> None:
    record_turn("shape", "hello", "id-1", tmp_path)
    data = json.loads(sessions.session_file("shape").read_text())
    assert data["sessionChain"] == ["id-1"] and data["currentSessionId"] == "id-1"
    assert [(m["role"], m["content"]) for m in data["messages"]] == [
        ("user", "hello"), ("assistant", "re: hello")]
    assert all("time" in m for m in data["messages"])
    meta = data["metadata"]
    assert meta["turns"] == 1 and meta["workspace"] == str(tmp_path) and meta["costUsd"] == 0.01
    assert "created" in meta and "lastActive" in meta
    assert data["warm"] is None and data["options"] == {}
    assert oct(sessions.session_file("shape").stat().st_mode & 0o777) == "0o600"


def test_each_turn_appends_a_new_id_and_resumes_the_last(tmp_path: Path) -> None:
    record_turn("chain", "one", "id-1", tmp_path)
    record_turn("chain", "two", "id-1", tmp_path)
    record_turn("chain", "three", "id-2", tmp_path)
    state = sessions.load("chain")
    assert state is not None
    assert state.session_chain == ["id-1", "id-2"] and state.current_session_id == "id-2"
    assert len(state.messages) == 6 and state.metadata["turns"] == 3


def test_options_of_the_first_turn_are_remembered_without_per_turn_ones() -> None:
    options = build_options({
        "model": "m", "tools": ["Read", "Bash(git log:*)"], "timeout": 5, "verbose": True,
        "session": "x", "resume": "abc", "apply": "propose",
        "docker": {"network": "host", "memory": "1g", "env": {"A": "1"}},
        "worktree": {"branch": "feat/x", "keep": False},
    })
    layer = sessions.options_layer(options)
    assert layer == {"model": "m", "tools": ["Read", "Bash(git log:*)"], "apply": "propose",
                     "docker": {"network": "host", "memory": "1g", "env": {"A": "1"}},
                     "worktree": {"branch": "feat/x", "base": None, "keep": False, "path": None}}
    again = build_options(json.loads(json.dumps(layer)))
    assert again.docker == DockerOptions(network="host", memory="1g", env={"A": "1"})
    assert again.worktree == WorktreeOptions(branch="feat/x", keep=False)
    assert again.tools == options.tools


def test_docker_true_is_remembered_as_docker() -> None:
    layer = sessions.options_layer(RunOptions(docker=DockerOptions()))
    assert layer == {"docker": {}}
    assert build_options(layer).docker == DockerOptions()


@pytest.mark.parametrize("name", ["../evil", "a/b", "", ".hidden", "x" * 200, "sp ace"])
def test_bad_session_names_are_refused(name: str) -> None:
    with pytest.raises(UsageError, match="invalid session name"):
        sessions.session_file(name)


def test_non_ascii_names_work(tmp_path: Path) -> None:
    record_turn("überprüfung-2", "hi", "id", tmp_path)
    assert [s.name for s in sessions.list_sessions() if s.name == "überprüfung-2"]


def test_a_session_belongs_to_its_workspace(tmp_path: Path) -> None:
    record_turn("mine", "hi", "id", tmp_path)
    other = tmp_path / "other"
    other.mkdir()
    with pytest.raises(SessionError) as info:
        record_turn("mine", "hi", "id", other)
    assert str(tmp_path) in info.value.message and "-C" in info.value.hint


def test_a_damaged_file_is_a_clear_error(tmp_path: Path) -> None:
    sessions.session_file("broken").write_text("{not json")
    with pytest.raises(SessionError) as info:
        sessions.load("broken")
    assert "sessions rm broken" in info.value.hint
    with pytest.raises(SessionError):
        record_turn("broken", "hi", "id", tmp_path)
    assert sessions.remove("broken") and not sessions.exists("broken")


def test_remove_and_rename(tmp_path: Path) -> None:
    record_turn("old-name", "hi", "id-9", tmp_path)
    renamed = sessions.rename("old-name", "new-name")
    assert renamed.current_session_id == "id-9" and not sessions.exists("old-name")
    assert sessions.remove("new-name") and not sessions.exists("new-name")
    assert sessions.remove("new-name") is None


async def test_turns_of_one_session_wait_for_each_other(tmp_path: Path) -> None:
    first = await sessions.SessionTurn.begin("serial", tmp_path)
    order: list[str] = []

    async def second() -> None:
        turn = await sessions.SessionTurn.begin("serial", tmp_path)
        order.append(f"second sees {turn.resume_id}")
        turn.release()

    async with anyio.create_task_group() as tg:
        tg.start_soon(second)
        await anyio.sleep(0.3)
        order.append("first records")
        first.record(prompt="p", options=RunOptions(), workspace=tmp_path, cwd=tmp_path,
                     session_id="id-first", text="t", ok=True)
        first.release()
    assert order == ["first records", "second sees id-first"]


async def test_waiting_for_a_turn_is_cancellable(tmp_path: Path) -> None:
    holder = await sessions.SessionTurn.begin("blocked", tmp_path)
    with anyio.move_on_after(0.3) as scope:
        await sessions.SessionTurn.begin("blocked", tmp_path)
    assert scope.cancelled_caught
    holder.release()
    turn = await sessions.SessionTurn.begin("blocked", tmp_path)
    turn.release()


WRITER = textwrap.dedent("""
    import sys, anyio
    from pathlib import Path
    from channelcoder import sessions
    from channelcoder.config import RunOptions
    name, tag, count, ws = sys.argv[1], sys.argv[2], int(sys.argv[3]), Path(sys.argv[4])
    async def main():
        for i in range(count):
            turn = await sessions.SessionTurn.begin(name, ws)
            try:
                turn.record(prompt=f"{tag}-{i}", options=RunOptions(), workspace=ws, cwd=ws,
                            session_id=f"{tag}-id-{i}", text="x" * 2000, ok=True)
            finally:
                turn.release()
            # a writer that bypasses the turn lock too (e.g. save()) must not lose turns either
            sessions.update(name, lambda s: s.metadata.__setitem__(f"touched-{tag}", i))
    anyio.run(main)
""")


def test_two_processes_writing_one_session_lose_no_turn(tmp_path: Path) -> None:
    count = 40
    env = dict(os.environ)
    procs = [subprocess.Popen([sys.executable, "-c", WRITER, "shared", tag, str(count),
                               str(tmp_path)], env=env, stderr=subprocess.PIPE)
             for tag in ("a", "b")]
    for proc in procs:
        _, err = proc.communicate(timeout=120)
        assert proc.returncode == 0, err.decode()
    data = json.loads(sessions.session_file("shared").read_text())
    prompts = [m["content"] for m in data["messages"] if m["role"] == "user"]
    assert sorted(prompts) == sorted(f"{t}-{i}" for t in "ab" for i in range(count))
    assert data["metadata"]["turns"] == 2 * count
    assert len(data["sessionChain"]) == 2 * count
    assert data["metadata"]["touched-a"] == count - 1 and data["metadata"]["touched-b"] == count - 1
    leftovers = [p.name for p in sessions.sessions_dir().iterdir() if p.name.startswith(".shared.json")]
    assert leftovers == []


def test_old_unsaved_sessions_are_reaped_and_saved_ones_kept(tmp_path: Path) -> None:
    sessions.create("draft-old", workspace=tmp_path, saved=False)
    sessions.create("draft-new", workspace=tmp_path, saved=False)
    sessions.create("kept-old", workspace=tmp_path)
    week_ago = time.time() - 8 * 24 * 3600
    for name in ("draft-old", "kept-old"):
        os.utime(sessions.session_file(name), (week_ago, week_ago))
    removed = sessions.reap_unsaved()
    assert "draft-old" in removed and not sessions.exists("draft-old")
    assert sessions.exists("draft-new") and sessions.exists("kept-old")
