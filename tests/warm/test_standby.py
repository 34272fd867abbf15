"""The language server's standby sandbox (issue 5, item 8): real server, engine, CLI, scripted model.

A standby is a warm container with claude spawned and idle on a speculative snapshot of the
workspace. These tests show that a matching job takes it (and a new one is prepared), that other
jobs start cold, that what the model receives is the same as from a cold job (the gate), that a
workspace changed since the spawn is not served by the stale standby, and that shutdown removes it.
"""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

import pytest

from channelcoder.testing.fake_anthropic import DUMMY_KEY, FakeAnthropic, Reply, ToolCall
from tests.conftest import git
from tests.lsp.conftest import Session, Start, wait_for
from tests.lsp.test_proposals import SED, UNSAVED, diagnostic
from tests.warm.helpers import ready_standby, wait_gone, warm_containers

pytestmark = [pytest.mark.docker, pytest.mark.usefixtures("claude_bin", "no_leaked_containers")]

FIXED = "GREETING = 'hello, world'\n"
STANDBY_GUARD = 120.0  # the first standby may wait for the image and a spare snapshot


@pytest.fixture
def sandbox(sandbox_image: str) -> dict[str, Any]:
    return {"docker": {"image": sandbox_image}, "streamEvents": True}


async def standby_ready(client: Any, *, other_than: str | None = None,
                        guard: float = STANDBY_GUARD) -> str:
    """Wait (hang guard) for a ready standby container; its id."""
    try:
        async with asyncio.timeout(guard):
            while True:
                found = await asyncio.to_thread(ready_standby, client)
                if found is not None and found["Id"] != other_than:
                    return str(found["Id"])
                await asyncio.sleep(0.1)
    except TimeoutError:
        pytest.fail(f"no standby after {guard:g} s; the servers' standby log:\n{standby_log()}")


def standby_log(lines: int = 40) -> str:
    """The standby lines of the language servers' shared log (what the pool tried and why not)."""
    from channelcoder.lsp.logs import default_log_file

    try:
        text = default_log_file().read_text(errors="replace")
    except OSError as exc:
        return f"(no log: {exc})"
    return "\n".join([line for line in text.splitlines() if "standby" in line][-lines:])


def statuses(session: Session, job_id: str) -> list[str]:
    return [e.get("message", "") for e in session.job_events(job_id) if e["type"] == "status"]


async def fix(session: Session, uri: str) -> dict[str, Any]:
    reply: dict[str, Any] = await session.command("channelcoder.fix",
                                                  {"uri": uri, "diagnostic": diagnostic()})
    assert reply["ok"] is True, reply
    return reply


async def rejected_and_followed(session: Session, job_id: str, reason: str) -> dict[str, Any]:
    """Reject a job's proposal with `reason`; the end event of the follow-up that starts."""
    rejected = await session.command("channelcoder.rejectProposal",
                                     {"jobId": job_id, "reason": reason})
    follow = rejected["nextJobId"]
    assert follow, rejected
    await wait_for(lambda: any(e["type"] in ("result", "error")
                               for e in session.job_events(follow)),
                   guard=STANDBY_GUARD, what="the follow-up's end")
    (last,) = [e for e in session.job_events(follow) if e["type"] in ("result", "error")]
    return dict(last)


async def test_a_matching_job_takes_the_standby_and_a_new_one_is_prepared(
        scripted: Any, lsp: Start, workspace: Path, sandbox: dict[str, Any],
        docker_client: Any) -> None:
    api = scripted([ToolCall("Bash", {"command": f"echo key=$ANTHROPIC_API_KEY; {SED['command']}"}),
                    Reply("Made the greeting longer.")])
    session = await lsp(workspace, init=sandbox)
    standby = await standby_ready(docker_client)
    uri = session.editor.open(workspace / "app.py")
    reply = await fix(session, uri)
    assert f"using the standby sandbox {standby[:12]}" in statuses(session, reply["jobId"])
    await session.editor.wait_edit()
    assert session.editor.buffers[uri].text == FIXED
    assert (workspace / "app.py").read_text() == "GREETING = 'hello'\n"
    requests = api.agent_requests()
    assert "/workspace" in requests[0].system
    # the default network mode: the standby's way out is the egress proxy, which holds the key
    assert "key=sk-ant-api03-channelcoder-placeholder" in "\n".join(requests[-1].texts())
    assert {r.headers.get("x-api-key") for r in requests} == {DUMMY_KEY}
    # the standby served its job and went away; the next one is another container
    following = await standby_ready(docker_client, other_than=standby)
    assert following != standby
    await asyncio.to_thread(wait_gone, docker_client, standby)  # its claude stopped, then removed


def project(workspace: Path) -> None:
    """What the CLI reads at spawn: CLAUDE.md, settings, git history and uncommitted work."""
    (workspace / "CLAUDE.md").write_text("Project rule: greetings are PINEAPPLE-approved.\n")
    (workspace / ".claude").mkdir()
    (workspace / ".claude" / "settings.json").write_text(
        '{"permissions": {"deny": ["Bash(rm -rf:*)"]}, "env": {"PROJECT_FLAVOUR": "mango"}}\n')
    git(workspace, "add", ".")
    git(workspace, "commit", "-qm", "project rules")
    (workspace / "notes.md").write_text("untracked notes\n")
    (workspace / "app.py").write_text("GREETING = 'hello'  # saved, not committed\n")


def first_request(api: FakeAnthropic) -> Any:
    return api.agent_requests()[0]


async def one_fix(lsp: Start, scripted: Any, workspace: Path, init: dict[str, Any],
                  client: Any, *, expect_standby: bool) -> tuple[Any, list[str]]:
    api = scripted([ToolCall("Bash", {"command": "git status --short"}), Reply("Looked.")])
    session = await lsp(workspace, init=init)
    if init.get("standby", True):
        await standby_ready(client)
    reply = await fix(session, session.editor.open(workspace / "app.py"))
    seen = statuses(session, reply["jobId"])
    assert any("using the standby sandbox" in s for s in seen) is expect_standby, seen
    await session.client.shutdown_session()
    return first_request(api), seen


def same_view(standby: Any, cold: Any) -> None:
    assert standby.system == cold.system
    assert standby.body["tools"] == cold.body["tools"]
    assert standby.messages == cold.messages


async def test_gate_a_standby_job_sends_what_a_cold_job_sends(
        scripted: Any, lsp: Start, workspace: Path, sandbox: dict[str, Any],
        docker_client: Any) -> None:
    project(workspace)
    warm, _ = await one_fix(lsp, scripted, workspace, sandbox, docker_client, expect_standby=True)
    cold, _ = await one_fix(lsp, scripted, workspace, {**sandbox, "standby": False},
                            docker_client, expect_standby=False)
    same_view(warm, cold)
    # and the view is the workspace's: its CLAUDE.md, its git state
    assert "PINEAPPLE-approved" in "\n".join(warm.texts())
    assert "project rules" in warm.system and "?? notes.md" in warm.system
    assert "M app.py" in warm.system


async def test_a_standby_spawned_before_the_workspace_changed_is_not_used(
        scripted: Any, lsp: Start, workspace: Path, sandbox: dict[str, Any],
        docker_client: Any) -> None:
    project(workspace)
    api = scripted([ToolCall("Bash", {"command": "git status --short"}), Reply("Looked.")])
    session = await lsp(workspace, init=sandbox)
    stale = await standby_ready(docker_client)
    (workspace / "CLAUDE.md").write_text("Project rule: greetings are KIWI-approved.\n")
    git(workspace, "commit", "-qam", "kiwi rules")
    reply = await fix(session, session.editor.open(workspace / "app.py"))
    assert not any("standby" in s for s in statuses(session, reply["jobId"]))
    changed = first_request(api)
    assert "KIWI-approved" in "\n".join(changed.texts()) and "kiwi rules" in changed.system
    assert stale not in {c["Id"] for c in warm_containers(docker_client)}
    # the next standby is spawned on the workspace as it is now
    await standby_ready(docker_client, other_than=stale)
    await session.client.shutdown_session()
    cold, _ = await one_fix(lsp, scripted, workspace, {**sandbox, "standby": False},
                            docker_client, expect_standby=False)
    same_view(changed, cold)


async def test_jobs_that_do_not_match_start_cold_and_leave_the_standby_ready(
        scripted: Any, lsp: Start, workspace: Path, sandbox: dict[str, Any],
        docker_client: Any) -> None:
    # both jobs start at the scenario's first turn; the ask job is not offered Bash
    api = scripted([ToolCall("Bash", SED), Reply("Longer now.")])
    session = await lsp(workspace, init=sandbox)
    standby = await standby_ready(docker_client)
    uri = session.editor.open(workspace / "app.py")
    # other tools (ask is read-only): another claude command line
    asked = await session.command("channelcoder.ask", {"prompt": "What does it do?",
                                                       "uri": uri})
    assert asked["ok"] is True, asked
    assert not any("standby" in s for s in statuses(session, asked["jobId"]))
    assert sorted(api.agent_requests()[0].tools) == ["Glob", "Grep", "Read"]
    assert await standby_ready(docker_client) == standby
    # an unsaved buffer changes what git status says, which the standby captured at spawn
    session.editor.type_text(uri, UNSAVED)
    reply = await fix(session, uri)
    assert not any("standby" in s for s in statuses(session, reply["jobId"]))
    assert any("# unsaved line" in t for t in api.agent_requests()[-1].texts())
    await session.editor.wait_edit()
    assert "hello, world" in session.editor.buffers[uri].text
    await standby_ready(docker_client, other_than=standby)


async def test_a_rejected_standby_proposal_continues_the_same_conversation(
        scripted: Any, lsp: Start, workspace: Path, sandbox: dict[str, Any],
        docker_client: Any) -> None:
    api = scripted([ToolCall("Bash", SED), Reply("Made it longer."),
                    Reply("Kept it short instead.")])
    session = await lsp(workspace, init=sandbox)
    await standby_ready(docker_client)
    session.editor.refuse_all = True
    reply = await fix(session, session.editor.open(workspace / "app.py"))
    assert any("using the standby sandbox" in s for s in statuses(session, reply["jobId"]))
    await session.editor.wait_edit()
    last = await rejected_and_followed(session, reply["jobId"], "too long")
    assert last["type"] == "result" and last["ok"], last
    seen = "\n".join(api.agent_requests()[-1].texts())
    assert "too long" in seen and "Made it longer." in seen, seen


async def test_standby_false_prepares_none_and_shutdown_removes_it(
        scripted: Any, lsp: Start, workspace: Path, sandbox: dict[str, Any],
        docker_client: Any) -> None:
    scripted([Reply("unused")])
    off = await lsp(workspace, init={**sandbox, "standby": False})
    await off.command("channelcoder.jobs")
    await asyncio.sleep(2)  # time enough for a standby to appear if one were being made
    assert not warm_containers(docker_client)
    await off.client.shutdown_session()
    on = await lsp(workspace, init=sandbox)
    standby = await standby_ready(docker_client)
    await on.client.shutdown_session()
    wait_gone(docker_client, standby)


async def test_shutdown_while_the_next_standby_is_prepared_leaves_nothing(
        scripted: Any, lsp: Start, workspace: Path, sandbox: dict[str, Any],
        docker_client: Any) -> None:
    scripted([Reply("ok")])
    session = await lsp(workspace, init=sandbox)
    await standby_ready(docker_client)
    await fix(session, session.editor.open(workspace / "app.py"))  # the next one is starting
    await session.client.shutdown_session()
    assert not warm_containers(docker_client)


async def test_a_server_stopped_with_sigterm_removes_its_standby(
        scripted: Any, lsp: Start, workspace: Path, sandbox: dict[str, Any],
        docker_client: Any) -> None:
    scripted([Reply("unused")])
    session = await lsp(workspace, init=sandbox)
    standby = await standby_ready(docker_client)
    server = session.client._server  # Neovim's forced stop: SIGTERM, no shutdown request
    server.terminate()
    async with asyncio.timeout(30):
        await server.wait()
    wait_gone(docker_client, standby)


async def test_a_standby_comes_once_the_engine_is_back(
        scripted: Any, lsp: Start, workspace: Path, sandbox: dict[str, Any],
        docker_client: Any, tmp_path: Path) -> None:
    import os

    from tests.lsp.test_sandbox import EngineProxy

    host = os.environ.get("DOCKER_HOST", "unix:///var/run/docker.sock")
    if not host.startswith("unix://"):
        pytest.skip("the engine is not on a unix socket")
    socket_path = tmp_path / "engine.sock"
    scripted([Reply("Nothing to change.")])
    session = await lsp(workspace, env={"DOCKER_HOST": f"unix://{socket_path}"}, init=sandbox)
    uri = session.editor.open(workspace / "app.py")
    down = await session.command("channelcoder.fix", {"uri": uri, "diagnostic": diagnostic()})
    assert down["error"]["code"] == "docker-unavailable", down
    proxy = EngineProxy(socket_path, host.removeprefix("unix://"))
    await proxy.start()
    try:
        cold = await fix(session, uri)  # no standby yet: each job makes the pool try again
        assert not any("standby" in s for s in statuses(session, cold["jobId"]))
        standby = await standby_ready(docker_client)
        warm = await fix(session, uri)
        assert f"using the standby sandbox {standby[:12]}" in statuses(session, warm["jobId"])
    finally:
        await session.client.shutdown_session()
        await proxy.stop()


async def test_a_standby_follows_the_engine_without_any_job(
        lsp: Start, workspace: Path, sandbox: dict[str, Any], docker_client: Any,
        tmp_path: Path) -> None:
    import os

    from tests.lsp.test_sandbox import EngineProxy

    host = os.environ.get("DOCKER_HOST", "unix:///var/run/docker.sock")
    if not host.startswith("unix://"):
        pytest.skip("the engine is not on a unix socket")
    socket_path = tmp_path / "engine.sock"
    session = await lsp(workspace, env={"DOCKER_HOST": f"unix://{socket_path}"}, init=sandbox)
    await asyncio.sleep(1)  # the first attempt finds no engine
    assert await asyncio.to_thread(ready_standby, docker_client) is None
    proxy = EngineProxy(socket_path, host.removeprefix("unix://"))
    await proxy.start()
    try:
        await standby_ready(docker_client)  # the server's own retry, nothing asked for it
    finally:
        await session.client.shutdown_session()
        await proxy.stop()


async def test_turning_the_standby_off_leaves_the_job_using_it_alone(
        scripted: Any, lsp: Start, workspace: Path, sandbox: dict[str, Any],
        docker_client: Any) -> None:
    from lsprotocol import types

    from channelcoder.testing.fake_anthropic import Turn

    scripted([ToolCall("Bash", SED), Turn([Reply("Made the greeting longer.")], first_delay=2.0)])
    session = await lsp(workspace, init=sandbox)
    standby = await standby_ready(docker_client)
    uri = session.editor.open(workspace / "app.py")
    pending = asyncio.ensure_future(fix(session, uri))
    await wait_for(lambda: any("using the standby" in e.get("message", "")
                               for e in (x["event"] for x in session.events)))
    session.client.set_configuration({**sandbox, "standby": False}, section="channelcoder")
    session.client.workspace_did_change_configuration(
        types.DidChangeConfigurationParams(settings=None))
    reply = await pending
    assert f"using the standby sandbox {standby[:12]}" in statuses(session, reply["jobId"])
    await session.editor.wait_edit()
    assert session.editor.buffers[uri].text == FIXED
    await asyncio.to_thread(wait_gone, docker_client, standby)  # retired after its job
    await asyncio.sleep(1)  # and no new standby comes while the setting is off
    assert await asyncio.to_thread(ready_standby, docker_client) is None
