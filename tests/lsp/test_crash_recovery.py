"""A language server started after another one died cleans up after it: it removes at once the
sandboxes a dead channelcoder process left (never those of a live server in the same
workspace, e.g. a second editor's), and offers again the proposals the dead server had saved and
nobody decided (real servers over stdio, real engine and CLI, scripted model). The doctor says
what the standby is right now."""

from __future__ import annotations

import signal
import subprocess
import time
import uuid
from pathlib import Path
from typing import Any

import pytest

from channelcoder.owner import owner_label
from channelcoder.sandbox.labels import MANAGED, OWNER, WORKSPACE_LABEL
from channelcoder.testing.fake_anthropic import Reply, ToolCall, Turn
from tests.lsp.rawclient import RawClient
from tests.plugins.docker import RUN_ID, RUN_LABEL, job_ran_its_tool, run_containers, wait_until
from tests.warm.helpers import ready_standby

pytestmark = pytest.mark.usefixtures("claude_bin")

GONE_WITHIN = 10.0
GUARD = 120.0
NATIVE = {"docker": False, "tools": ["Bash", "Read", "Edit"], "streamEvents": True}
EDITOR_CAPS = {"window": {"workDoneProgress": True},
               "workspace": {"workspaceEdit": {"documentChanges": True,
                                               "changeAnnotationSupport": {}}}}


class RecordingClient(RawClient):
    """A RawClient that remembers the requests the server sent (and refuses every edit)."""

    def __init__(self, env: dict[str, str] | None = None) -> None:
        self.requests: list[dict[str, Any]] = []
        super().__init__(env=env)

    def _answer(self, request: dict[str, Any]) -> None:
        self.requests.append(request)
        super()._answer(request)

    def offers(self) -> list[dict[str, Any]]:
        return [r["params"] for r in list(self.requests) if r["method"] == "workspace/applyEdit"]

    def shown(self) -> list[str]:
        return [n["params"]["message"] for n in list(self.notifications)
                if n["method"] == "window/showMessage"]


def dead_owner() -> str:
    """The owner label of a real process that has exited (as a SIGKILLed server's is)."""
    child = subprocess.Popen(["sleep", "30"])
    label = owner_label(child.pid)
    child.kill()
    child.wait()
    return label


def kill(raw: RawClient) -> None:
    raw.process.send_signal(signal.SIGKILL)
    raw.wait_exit(GUARD)
    raw.close()


@pytest.mark.docker
@pytest.mark.timeout(600)
def test_a_new_server_removes_a_dead_servers_sandbox_at_once_but_not_a_live_servers(
        scripted: Any, git_repo: Path, sandbox_image: str, docker_client: Any) -> None:
    api = scripted([ToolCall("Bash", {"command": "echo started"}),
                    Turn([Reply("late")], first_delay=120)])
    before = run_containers(docker_client)
    settings = {"docker": {"image": sandbox_image}, "streamEvents": True}
    live = RawClient(env=api.env())
    second: RawClient | None = None
    try:
        live.initialize(git_repo, settings)
        wait_until(lambda: ready_standby(docker_client) is not None, "the live server's standby",
                   GUARD)
        standby = ready_standby(docker_client)
        assert standby is not None
        doctor = live.request("workspace/executeCommand", {"command": "channelcoder.doctor"},
                              timeout=GUARD)["result"]
        state = doctor["standby"]
        assert (state["state"], state["container"], state["image"], state["workspace"]) == (
            "ready", standby["Id"][:12], sandbox_image, str(git_repo.resolve())), state
        assert 0 <= state["ageSeconds"] < GUARD, state
        assert any(c["name"] == "standby sandbox" and c["detail"].startswith("ready: container ")
                   for c in doctor["checks"]), doctor["checks"]
        job_id = f"live-{uuid.uuid4().hex[:6]}"
        live.send({"jsonrpc": "2.0", "id": "run", "method": "workspace/executeCommand",
                   "params": {"command": "channelcoder.run",
                              "arguments": [{"prompt": "wait", "jobId": job_id,
                                             "options": {"apply": "direct"}}]}})
        wait_until(lambda: job_ran_its_tool(live.notifications, job_id), "the live job's tool",
                   GUARD)
        lives = run_containers(docker_client) - before
        assert len(lives) >= 2, "the live server has no job container beside its standby"
        # What a dead server leaves when its sandbox outlived it (its lifeline never held, e.g.
        # an engine reached over ssh): a managed container naming an owner that is gone.
        orphan = docker_client.api.create_container(
            sandbox_image, command=["sleep", "300"], labels={
                MANAGED: "1", OWNER: dead_owner(), RUN_LABEL: RUN_ID,
                WORKSPACE_LABEL: str(git_repo)})["Id"]
        docker_client.api.start(orphan)

        second = RawClient(env=api.env())
        second.initialize(git_repo, {**settings, "standby": False})
        started = time.monotonic()
        wait_until(lambda: orphan not in run_containers(docker_client),
                   "the dead server's container's removal", GONE_WITHIN)
        print(f"the dead server's container went {time.monotonic() - started:.2f} s after the "
              "second server's initialize")
        assert lives <= run_containers(docker_client), "a live server's container was removed"
        off = second.request("workspace/executeCommand", {"command": "channelcoder.doctor"},
                             timeout=GUARD)["result"]["standby"]
        assert off == {"setting": False, "state": "off"}, off
        reply = live.request("workspace/executeCommand", {
            "command": "channelcoder.cancel", "arguments": [{"jobId": job_id}]})
        assert reply["result"]["cancelled"] is True, reply
    finally:
        for raw in (live, second):
            if raw is not None:
                raw.close()
        for cid in run_containers(docker_client) - before:
            docker_client.api.remove_container(cid, force=True)


@pytest.mark.timeout(300)
def test_a_dead_servers_undecided_proposal_is_offered_again_by_the_next_server_only(
        scripted: Any, git_repo: Path) -> None:
    api = scripted([ToolCall("Bash", {"command": "sed -i \"s/'hello'/'hi'/\" app.py"}),
                    Reply("Changed the greeting.")])
    first = RecordingClient(env=api.env())
    try:
        first.initialize(git_repo, NATIVE, EDITOR_CAPS)
        reply = first.request("workspace/executeCommand", {
            "command": "channelcoder.run",
            "arguments": [{"prompt": "say hi", "jobId": "crash-proposal"}]}, timeout=GUARD)
        assert reply["result"]["proposalId"] == "crash-proposal", reply
        wait_until(lambda: first.offers(), "the first offer", GUARD)
    finally:
        kill(first)  # the user had not decided: the edit was refused, the proposal is pending

    second = RecordingClient(env=api.env())
    try:
        second.initialize(git_repo, NATIVE, EDITOR_CAPS)
        wait_until(lambda: second.offers(), "the proposal offered again", GUARD)
        offered = second.offers()[0]
        assert offered["label"] == "Claude: say hi", offered
        changes = offered["edit"]["documentChanges"]
        assert changes[0]["textDocument"]["uri"] == (git_repo / "app.py").as_uri()
        assert "Offering again a proposal saved before the server stopped" in second.shown()
    finally:
        second.close()  # a clean exit: the proposal stays pending, nobody's to offer

    third = RecordingClient(env=api.env())
    try:
        third.initialize(git_repo, NATIVE, EDITOR_CAPS)
        listed = third.request("workspace/executeCommand", {"command": "channelcoder.jobs"})
        assert [p["jobId"] for p in listed["result"]["proposals"]] == ["crash-proposal"]
        time.sleep(3)  # the second server had it offered within this time
        assert not third.offers(), "a proposal left by a clean exit was offered again"
    finally:
        third.close()
    assert (git_repo / "app.py").read_text() == "GREETING = 'hello'\n", "nothing was applied"
