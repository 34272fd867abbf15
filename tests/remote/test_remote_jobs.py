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

from channelcoder.claude.events import Result, SecurityEvent
from channelcoder.sandbox.manager import SandboxManager
from channelcoder.testing.fake_anthropic import Reply, ToolCall
from tests.conftest import git, make_repo
from tests.plugins.docker import docker_options
from tests.plugins.remote_engine import RemoteEngine
from tests.sandbox.helpers import collect, final, job, tool_outputs

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
    planted = [e for e in events if isinstance(e, SecurityEvent)]
    assert planted and "hooks/post-commit" in planted[0].describe(), planted
