"""Jobs on a truly remote engine (`remote_engine`: dockerd in a container that sees none of
this machine's files), end to end with the real Claude CLI and the scripted model, which runs
on this machine's loopback and is reached through the egress proxy's channel into the remote
container. The workspace goes in as a copy and the job's changes come back to it."""

from __future__ import annotations

import os
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import anyio
import pytest

from channelcoder import Result as ApiResult
from channelcoder import session
from channelcoder.api import build_request
from channelcoder.claude.events import Changes, Error, Result, SecurityEvent, ToolResult, ToolUse
from channelcoder.config import DockerOptions
from channelcoder.jobs import Job
from channelcoder.sandbox.diagnose import diagnose
from channelcoder.sandbox.image.resolve import ResolvedImage
from channelcoder.sandbox.manager import SandboxManager
from channelcoder.session_cleanup import remove_session
from channelcoder.testing.fake_anthropic import Reply, ToolCall
from tests.conftest import git, make_repo
from tests.plugins.docker import docker_options
from tests.plugins.remote_engine import RemoteEngine
from tests.sandbox.helpers import HANG_GUARD, collect, final, job, tool_outputs

pytestmark = [pytest.mark.docker, pytest.mark.timeout(600)]


@pytest.fixture(params=["tls", "ssh"])
def on_remote(request: pytest.FixtureRequest, remote_engine: RemoteEngine,
              monkeypatch: pytest.MonkeyPatch) -> Iterator[SandboxManager]:
    """A manager of its own whose engine is the remote one, over TCP+TLS or ssh://."""
    env = remote_engine.tls_env() if request.param == "tls" else remote_engine.ssh_env()
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    manager = SandboxManager()
    yield manager
    anyio.run(manager.close)


@pytest.fixture
def repo(tmp_path: Path) -> Path:
    return make_repo(tmp_path / "project", {"notes.txt": "from this machine\n",
                                            "app.py": "print('hello')\n"})


class MountWatch:
    """Inspects the job's container on the remote engine while it runs: every mount it had."""

    def __init__(self, client: Any) -> None:
        self.client = client
        self.mounts: list[dict[str, Any]] = []
        self.host_config: dict[str, Any] = {}
        self.seen = threading.Event()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def __enter__(self) -> MountWatch:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join(10)

    def _run(self) -> None:
        while not self._stop.is_set():
            for item in self.client.api.containers(
                    filters={"label": "io.channelcoder.managed=1", "status": "running"}):
                try:
                    inspected = self.client.api.inspect_container(item["Id"])
                except Exception:
                    continue
                if inspected["Config"]["Labels"].get("io.channelcoder.job"):
                    self.mounts += inspected["Mounts"]
                    self.host_config = inspected["HostConfig"]
                    self.seen.set()
            time.sleep(0.1)


async def test_a_direct_job_on_a_remote_engine_edits_the_local_workspace(
        scripted: Any, sandbox_image: str, repo: Path, on_remote: SandboxManager,
        remote_engine: RemoteEngine) -> None:
    scripted([ToolCall("Bash", {"command": "sleep 1; cat notes.txt; hostname; "
                                           "echo changed remotely > notes.txt; "
                                           "mkdir -p docs && echo new > docs/new.md; "
                                           "rm app.py; git add -A; "
                                           "git commit -qm 'made on the remote engine'; "
                                           "mkdir -p .git/hooks; "
                                           "echo 'echo pwned' > .git/hooks/post-commit; "
                                           "chmod +x .git/hooks/post-commit"}),
              Reply("Done remotely.")])
    with MountWatch(remote_engine.client()) as watch:
        events = await collect(job("edit", repo, docker_options(sandbox_image, network="proxy"),
                                   manager=on_remote, apply="direct"))
    result = final(events)
    assert isinstance(result, Result) and result.ok, result
    output = tool_outputs(events)[0].output.splitlines()
    assert output[:2] == ["from this machine", output[1]], output
    assert output[1] != os.uname().nodename  # it ran over there
    assert (repo / "notes.txt").read_text() == "changed remotely\n"
    assert (repo / "docs/new.md").read_text() == "new\n"
    assert not (repo / "app.py").exists()
    # The commit came back through the git mirror; the planted hook did not reach .git.
    assert git(repo, "log", "-1", "--format=%s").strip() == "made on the remote engine"
    assert not (repo / ".git/hooks/post-commit").exists()
    assert git(repo, "status", "--porcelain").strip() == ""
    # No path of this machine was ever mounted: every mount was a volume of the engine's own.
    assert watch.seen.is_set()
    assert watch.mounts and {m["Type"] for m in watch.mounts} == {"volume"}
    local = (str(repo), str(Path(os.environ["CHANNELCODER_STATE_DIR"])), "/tmp", "/root")
    assert not [m for m in watch.mounts if str(m.get("Source", "")).startswith(local)]
    assert all(m["Source"].startswith("/var/lib/docker/volumes/") for m in watch.mounts)
    # The same hardened container as on a local engine: limits, no capability, no network.
    limits = watch.host_config
    assert limits["CapDrop"] == ["ALL"] and limits["ReadonlyRootfs"] is True
    assert limits["Memory"] == 4 * 2**30 and limits["PidsLimit"] == 512
    assert limits["NetworkMode"] == "none" and limits["SecurityOpt"] == ["no-new-privileges"]
    planted = [e for e in events if isinstance(e, SecurityEvent)]
    assert planted and "hooks/post-commit" in planted[0].describe(), planted


async def cancelled_in_its_tool(running: Any) -> tuple[list[Any], float]:
    """Run the job, cancel it half a second into its first tool call (which runs on the
    remote engine); its events and how long it took to end after the cancel."""
    events: list[Any] = []
    cancelled_at = 0.0
    with anyio.fail_after(HANG_GUARD):
        async for event in running.events():
            events.append(event)
            if isinstance(event, ToolUse) and not cancelled_at:
                await anyio.sleep(0.5)
                running.cancel()
                cancelled_at = time.monotonic()
    return events, time.monotonic() - cancelled_at


async def test_cancel_on_a_remote_engine_ends_the_job_within_two_seconds_keeping_its_edits(
        scripted: Any, sandbox_image: str, repo: Path, on_remote: SandboxManager,
        remote_engine: RemoteEngine) -> None:
    scripted([ToolCall("Bash", {"command": "echo partial > partial.txt; sleep 60"}),
              Reply("never")])
    running = job("wait", repo, docker_options(sandbox_image), manager=on_remote,
                  apply="direct")
    events, took = await cancelled_in_its_tool(running)
    error = final(events)
    assert isinstance(error, Error) and error.code == "cancelled", error
    assert took < 2.0, f"the job ended {took:.2f} s after cancel"
    # What it wrote before the cancel is here, as a local job's would be.
    assert (repo / "partial.txt").read_text() == "partial\n"
    client = remote_engine.client()
    assert client.api.containers(
        all=True, filters={"label": f"io.channelcoder.job={running.id}"}) == []


def copied_counts(caplog: pytest.LogCaptureFixture) -> list[int]:
    return [int(r.args[0]) for r in caplog.records  # type: ignore[index]
            if r.name == "channelcoder.sandbox.remote.process" and r.msg.startswith("copied")]


@pytest.mark.parametrize("on_remote", ["tls"], indirect=True)
async def test_a_named_sessions_second_turn_resumes_and_sends_only_what_changed(
        scripted: Any, sandbox_image: str, repo: Path, on_remote: SandboxManager,
        monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture) -> None:
    for n in range(1100):  # more than MANY: the first turn's files go through a started tar
        (repo / f"module_{n}.py").write_text(f"VALUE = {n}\n")
    git(repo, "add", "-A")
    git(repo, "commit", "-qm", "many modules")
    monkeypatch.setattr(SandboxManager, "_shared", on_remote)
    caplog.set_level("INFO", logger="channelcoder.sandbox.remote.process")
    caplog.set_level("DEBUG", logger="channelcoder.sandbox.remote.volumes")
    api = scripted([ToolCall("Bash", {"command": "echo first > first.txt"}),
                    Reply("Remember: TANGERINE."),
                    ToolCall("Bash", {"command": "cat first.txt module_7.py"}),
                    Reply("It was TANGERINE.")])
    s = session("remote-two", workspace=repo, docker=docker_options(sandbox_image),
                apply="direct")
    one = [e async for e in s.stream("first turn")]
    assert isinstance(one[-1], ApiResult) and one[-1].ok, one[-1]
    assert (repo / "first.txt").read_text() == "first\n"
    (repo / "module_7.py").write_text("VALUE = 'edited between the turns'\n")
    two = [e async for e in s.stream("which fruit?")]
    assert isinstance(two[-1], ApiResult) and two[-1].ok, two[-1]
    output = next(e for e in two if isinstance(e, ToolResult)).output
    assert "first" in output and "edited between the turns" in output, output
    texts = "\n".join(api.agent_requests()[-1].texts())
    assert "first turn" in texts and "Remember: TANGERINE." in texts  # resumed
    first, second = copied_counts(caplog)
    assert first > 1100 and second <= 3, (first, second)


@pytest.mark.parametrize("on_remote", ["tls"], indirect=True)
async def test_an_editor_job_on_a_remote_engine_proposes_its_changes(
        scripted: Any, sandbox_image: str, repo: Path, on_remote: SandboxManager) -> None:
    scripted([ToolCall("Bash", {"command": "sed -i s/hello/proposed/ app.py"}),
              Reply("Proposed.")])
    events = await collect(job("propose", repo, docker_options(sandbox_image),
                               manager=on_remote, apply="propose"))
    result = final(events)
    assert isinstance(result, Result) and result.ok, result
    changes = next(e for e in events if isinstance(e, Changes))
    assert [(c.path, c.new_text) for c in changes.files] == [("app.py", "print('proposed')\n")]
    assert (repo / "app.py").read_text() == "print('hello')\n"  # only proposed


@pytest.mark.parametrize("on_remote", ["tls"], indirect=True)
async def test_doctor_says_the_engine_is_remote_and_the_workspace_copied_in(
        repo: Path, on_remote: SandboxManager, remote_engine: RemoteEngine,
        monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(SandboxManager, "_shared", on_remote)
    checks = {c.name: c for c in await diagnose(repo, DockerOptions())}
    assert checks["files"].detail.startswith(
        f"remote engine at {remote_engine.tls_host}, workspace copied in"), checks["files"]
    forced = {c.name: c for c in await diagnose(repo, DockerOptions(remote=False))}
    assert forced["files"].detail.startswith("local engine"), forced["files"]


@pytest.mark.timeout(1200)
@pytest.mark.parametrize("on_remote", ["tls"], indirect=True)
async def test_the_bundled_image_is_built_on_the_remote_engine(
        sandbox_image: str, tmp_path: Path, on_remote: SandboxManager,
        remote_engine: RemoteEngine, docker_client: Any) -> None:
    statuses: list[str] = []
    resolved = None
    async for item in on_remote.resolve_image(DockerOptions(), tmp_path, force_build=True):
        if isinstance(item, ResolvedImage):
            resolved = item
        else:
            statuses.append(item.phase)
    assert resolved is not None and resolved.built
    assert resolved.ref == sandbox_image  # the same content key as this machine's build
    assert "building-image" in statuses
    remote = remote_engine.client().images.get(resolved.ref)
    assert remote.id == resolved.image_id
    assert docker_client.images.get(sandbox_image).id != resolved.image_id  # built over there


@pytest.mark.parametrize("on_remote", ["tls"], indirect=True)
async def test_a_read_write_mount_comes_back_and_a_read_only_one_does_not(
        scripted: Any, sandbox_image: str, repo: Path, on_remote: SandboxManager,
        tmp_path: Path) -> None:
    data, reference = tmp_path / "data", tmp_path / "reference"
    data.mkdir()
    reference.mkdir()
    (reference / "spec.md").write_text("the spec\n")
    scripted([ToolCall("Bash", {"command": "cat /reference/spec.md > /data/copy.md; "
                                           "echo changed > /reference/spec.md 2>&1; true"}),
              Reply("Copied.")])
    events = await collect(job("copy", repo, docker_options(
        sandbox_image, mounts=[f"{data}:/data:rw", f"{reference}:/reference:ro"]),
        manager=on_remote, apply="direct"))
    result = final(events)
    assert isinstance(result, Result) and result.ok, result
    assert (data / "copy.md").read_text() == "the spec\n"
    assert (reference / "spec.md").read_text() == "the spec\n"


@pytest.mark.parametrize("on_remote", ["tls"], indirect=True)
async def test_the_next_job_in_a_workspace_sends_only_what_differs_from_the_last(
        scripted: Any, sandbox_image: str, repo: Path, on_remote: SandboxManager,
        caplog: pytest.LogCaptureFixture) -> None:
    for n in range(200):
        (repo / f"module_{n}.py").write_text(f"VALUE = {n}\n")
    git(repo, "add", "-A")
    git(repo, "commit", "-qm", "modules")
    caplog.set_level("INFO", logger="channelcoder.sandbox.remote.process")
    scripted([ToolCall("Bash", {"command": "sed -i s/hello/proposed/ app.py"}),
              Reply("Proposed.")])
    first = await collect(job("propose", repo, docker_options(sandbox_image),
                              manager=on_remote, apply="propose"))
    assert isinstance(final(first), Result) and final(first).ok, final(first)
    assert (repo / "app.py").read_text() == "print('hello')\n"  # proposed, not applied
    (repo / "module_3.py").write_text("VALUE = 'edited here'\n")
    scripted([ToolCall("Bash", {"command": "cat app.py module_3.py"}), Reply("Looked.")])
    second = await collect(job("look", repo, docker_options(sandbox_image),
                               manager=on_remote, apply="propose"))
    assert isinstance(final(second), Result) and final(second).ok, final(second)
    # The volume the first job left is the second's: what the first changed is put back as
    # this machine has it, and only that and the file edited here go over.
    assert tool_outputs(second)[0].output.splitlines()[:2] == [
        "print('hello')", "VALUE = 'edited here'"], tool_outputs(second)[0].output
    counts = copied_counts(caplog)
    assert counts[0] > 200 and counts[1] <= 12, counts


BETWEEN_TURNS = ("const s = require('net').connect(3128, '127.0.0.1', () => s.write("
                 "'CONNECT api.anthropic.com:443 HTTP/1.1\\r\\nHost: api.anthropic.com\\r\\n\\r\\n'));"
                 "let got = ''; s.on('data', (d) => { got += d; });"
                 "s.on('error', () => {}); s.on('close', () => console.log('closed ' + "
                 "JSON.stringify(got)));")


async def test_a_kept_warm_sessions_follow_up_runs_in_the_same_remote_container(
        scripted: Any, sandbox_image: str, repo: Path, on_remote: SandboxManager,
        remote_engine: RemoteEngine, monkeypatch: pytest.MonkeyPatch,
        caplog: pytest.LogCaptureFixture) -> None:
    monkeypatch.setattr(SandboxManager, "_shared", on_remote)
    caplog.set_level("INFO", logger="channelcoder.sandbox.remote.process")
    api = scripted([ToolCall("Bash", {"command": "echo one > one.txt; echo $$ > /tmp/mark"}),
                    Reply("PLUM."),
                    ToolCall("Bash", {"command": "cat one.txt notes.txt /tmp/mark; ls"}),
                    Reply("Still PLUM.")])
    s = session("remote-warm", workspace=repo, apply="direct",
                docker=docker_options(sandbox_image, keep_warm=300))
    one = [e async for e in s.stream("first")]
    assert isinstance(one[-1], ApiResult) and one[-1].ok, one[-1]
    assert (repo / "one.txt").read_text() == "one\n"  # back here after the first turn
    client = remote_engine.client()
    (warm,) = client.api.containers(filters={"label": "io.channelcoder.session=remote-warm"})
    inspected = client.api.inspect_container(warm["Id"])
    # Kept warm over there with nothing of this machine in it: volumes and its own tmpfs only.
    assert {m["Type"] for m in inspected["Mounts"]} == {"volume"}
    assert "/channelcoder-warm/live" in inspected["HostConfig"]["Tmpfs"]
    # Between the turns the container has no way out, not even one that waits for the next.
    probe = client.api.exec_create(warm["Id"], ["node", "-e", BETWEEN_TURNS])
    assert client.api.exec_start(probe["Id"]).decode().strip() == 'closed ""'

    (repo / "notes.txt").write_text("edited between the turns\n")
    (repo / "app.py").unlink()
    before = int(time.time())
    two = [e async for e in s.stream("second")]
    assert isinstance(two[-1], ApiResult) and two[-1].ok, two[-1]
    made = list(client.api.events(since=before, until=int(time.time()) + 1, decode=True,
                                  filters={"type": "container", "event": "create"}))
    assert made == [], [m["Actor"]["Attributes"].get("name") for m in made]
    output = next(e for e in two if isinstance(e, ToolResult)).output.splitlines()
    # The same container (its /tmp kept the first turn's mark), the local edit and deletion
    # sent in (through the warm container: no helper is made for a follow-up).
    assert output[:2] == ["one", "edited between the turns"] and output[2].isdigit(), output
    assert output[3:] == ["notes.txt", "one.txt"], output
    assert "PLUM." in "\n".join(api.agent_requests()[-1].texts())  # the conversation went on
    listed = client.api.exec_start(client.api.exec_create(
        warm["Id"], ["ls", "/channelcoder-warm/live"])["Id"]).decode().split()
    assert len(listed) == 1, listed  # one live claude took both turns
    first, second = copied_counts(caplog)
    assert first > 0 and second <= 2, (first, second)
    session_volumes = {"label": "io.channelcoder.session=remote-warm"}
    assert len(client.api.volumes(filters=session_volumes)["Volumes"]) == 2  # workspace, config
    assert remove_session("remote-warm")
    assert client.api.containers(all=True, filters={"id": warm["Id"]}) == []
    assert not client.api.volumes(filters=session_volumes)["Volumes"]


@pytest.mark.parametrize("on_remote", ["tls"], indirect=True)
async def test_a_cancelled_warm_turn_on_a_remote_engine_keeps_its_edits_and_its_claude(
        scripted: Any, sandbox_image: str, repo: Path, on_remote: SandboxManager,
        remote_engine: RemoteEngine, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(SandboxManager, "_shared", on_remote)
    api = scripted([Reply("Ready."),
                    ToolCall("Bash", {"command": "echo partial > partial.txt; sleep 60"}),
                    Reply("Back.")])  # the interrupted tool's result is never asked about

    def turn(prompt: str) -> Job:
        return Job(build_request(prompt, workspace=repo, flags={
            "session": "remote-cancel", "apply": "direct",
            "docker": docker_options(sandbox_image, keep_warm=120)}))

    first = final([e async for e in turn("get ready").events()])
    assert isinstance(first, Result) and first.ok, first
    running = turn("work slowly")
    events, took = await cancelled_in_its_tool(running)
    error = final(events)
    assert isinstance(error, Error) and error.code == "cancelled", error
    assert took < 2.0, f"the turn ended {took:.2f} s after cancel"
    assert (repo / "partial.txt").read_text() == "partial\n"
    # The interrupted claude takes the next turn, in the same container.
    again = final([e async for e in turn("still there?").events()])
    assert isinstance(again, Result) and again.ok and again.text == "Back.", again
    assert "[Request interrupted by user for tool use]" in "\n".join(
        api.agent_requests()[-1].texts())  # the same conversation, interrupted
    client = remote_engine.client()
    (warm,) = client.api.containers(filters={"label": "io.channelcoder.session=remote-cancel"})
    listed = client.api.exec_start(client.api.exec_create(
        warm["Id"], ["ls", "/channelcoder-warm/live"])["Id"]).decode().split()
    assert len(listed) == 1, listed
    assert remove_session("remote-cancel")


@pytest.mark.parametrize("on_remote", ["tls"], indirect=True)
async def test_a_remote_warm_sandbox_ends_at_its_lease_and_its_job_cannot_move_the_clock(
        scripted: Any, sandbox_image: str, repo: Path, on_remote: SandboxManager,
        remote_engine: RemoteEngine, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(SandboxManager, "_shared", on_remote)
    clock = "/channelcoder-warm/clock/expires"
    scripted([ToolCall("Bash", {"command": f"id -u; echo 9999999999 > {clock} || echo refused"}),
              Reply("Tried.")])
    s = session("remote-expiry", workspace=repo, apply="direct",
                docker=docker_options(sandbox_image, keep_warm=4, user="1000:1000"))
    one = [e async for e in s.stream("try to stay")]
    assert isinstance(one[-1], ApiResult) and one[-1].ok, one[-1]
    output = next(e for e in one if isinstance(e, ToolResult)).output
    assert output.splitlines()[0] == "1000" and "refused" in output, output
    client = remote_engine.client()
    (warm,) = client.api.containers(filters={"label": "io.channelcoder.session=remote-expiry"})
    deadline = time.monotonic() + 20  # its own watchdog ends it: no process of ours is needed
    while client.api.containers(all=True, filters={"id": warm["Id"]}):
        assert time.monotonic() < deadline, "the remote warm sandbox outlived its lease"
        await anyio.sleep(0.2)
    assert remove_session("remote-expiry")
