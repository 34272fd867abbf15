"""Isolation: what claude (and the tools it runs) can and cannot do inside the sandbox.

Resource probes use small limits: pids 64, 256m with memswap = mem, 0.5 CPU.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import anyio
import pytest

from channelcoder.claude.events import Error, Result, Status, TextDelta
from channelcoder.sandbox.manager import SandboxManager
from channelcoder.testing.fake_anthropic import Reply, ToolCall, Turn
from tests.plugins.docker import docker_options

from .helpers import HANG_GUARD, collect, containers_of, final, job, tool_outputs

pytestmark = pytest.mark.docker

PROBE = """
id -u; id -g
grep CapEff /proc/self/status
ls /var/run/docker.sock /run/docker.sock 2>&1 | head -n 2
for d in / /etc /usr /var /opt /home; do touch "$d/cc-probe" 2>/dev/null && echo "wrote $d"; done
echo tmp > /tmp/cc-probe && echo "tmp ok"
echo home > "$HOME/cc-probe" && echo "home ok"
ls "$CC_HOST_PARENT" 2>&1 | head -n 1
"""


@pytest.fixture
def workspace(tmp_path: Path) -> Path:
    ws = tmp_path / "ws"
    ws.mkdir()
    return ws


async def test_inside_it_runs_as_the_host_user_with_no_capabilities_socket_or_writable_root(
        scripted: Any, sandbox_image: str, workspace: Path) -> None:
    scripted([ToolCall("Bash", {"command": PROBE}), Reply("probed")])
    docker = docker_options(sandbox_image, env={"CC_HOST_PARENT": str(workspace.parent)})
    events = await collect(job("probe", workspace, docker))
    lines = tool_outputs(events)[0].output.splitlines()
    assert lines[0:2] == [str(os.getuid()), str(os.getgid())]
    assert lines[2].split() == ["CapEff:", "0000000000000000"]
    assert all("No such file or directory" in line for line in lines[3:5])
    assert not [line for line in lines if line.startswith("wrote ")], lines
    assert "tmp ok" in lines and "home ok" in lines
    assert "No such file or directory" in lines[-1]
    assert isinstance(final(events), Result)


async def test_the_container_is_hardened_as_the_engine_reports_it(
        scripted: Any, sandbox_image: str, workspace: Path, docker_client: Any) -> None:
    scripted([Turn([Reply("slow " * 20)], chunks=20, delay=0.1)])
    docker = docker_options(sandbox_image, memory="512m", cpus=0.5, pids_limit=64)
    running = job("inspect me", workspace, docker)
    seen: dict[str, Any] = {}
    with anyio.fail_after(HANG_GUARD):
        async for event in running.events():
            if isinstance(event, TextDelta) and not seen:
                (container,) = containers_of(docker_client, running.id)
                seen.update(container.attrs)
    host = seen["HostConfig"]
    assert host["CapDrop"] == ["ALL"] and host["SecurityOpt"] == ["no-new-privileges"]
    assert host["Init"] is True and host["ReadonlyRootfs"] is True and not host["Privileged"]
    assert (host["PidsLimit"], host["Memory"], host["MemorySwap"]) == (64, 512 << 20, 512 << 20)
    assert host["NanoCpus"] == 500_000_000
    assert not any("docker.sock" in bind for bind in host["Binds"])
    assert f"{workspace}:/workspace:rw" in host["Binds"]
    assert seen["Config"]["User"] == f"{os.getuid()}:{os.getgid()}"
    assert seen["Config"]["OpenStdin"] is True and seen["Config"]["StdinOnce"] is True
    labels = seen["Config"]["Labels"]
    assert labels["io.channelcoder.managed"] == "1" and labels["io.channelcoder.job"] == running.id
    assert labels["io.channelcoder.workspace"] == str(workspace)
    assert labels["io.channelcoder.owner"].split("|")[1] == str(os.getpid())


async def test_a_fork_bomb_is_stopped_by_the_pids_limit_and_the_manager_stays_usable(
        scripted: Any, sandbox_image: str, workspace: Path) -> None:
    manager = SandboxManager()
    scripted([ToolCall("Bash", {"command": ":(){ :|:& };:; sleep 2; echo bomb-done",
                                "timeout": 30000}),
              Reply("contained")])
    docker = docker_options(sandbox_image, pids_limit=64, cpus=0.5)
    events = await collect(job("fork bomb", workspace, docker, manager))
    output = tool_outputs(events)[0].output
    assert "Resource temporarily unavailable" in output
    assert isinstance(final(events), Result | Error)
    await _manager_still_works(manager, scripted, sandbox_image, workspace)


async def test_a_memory_hog_is_stopped_and_the_job_fails_with_out_of_memory(
        scripted: Any, sandbox_image: str, workspace: Path) -> None:
    manager = SandboxManager()
    scripted([ToolCall("Bash", {"command": "head -c 2000m /dev/zero | tail > /dev/null"}),
              Reply("unreachable")])
    docker = docker_options(sandbox_image, memory="256m", cpus=0.5)
    events = await collect(job("memory hog", workspace, docker, manager))
    error = final(events)
    assert isinstance(error, Error) and error.code == "out-of-memory"
    assert error.message == "sandbox ran out of memory (limit 256m)"
    assert "--memory" in error.hint
    await _manager_still_works(manager, scripted, sandbox_image, workspace)


async def _manager_still_works(manager: SandboxManager, scripted: Any, image: str,
                               workspace: Path) -> None:
    scripted([Reply("still here")])
    result = final(await collect(job("again", workspace, docker_options(image), manager)))
    assert isinstance(result, Result) and result.ok and result.text == "still here"


async def test_network_none_cuts_the_sandbox_off(scripted: Any, sandbox_image: str,
                                                 workspace: Path,
                                                 monkeypatch: pytest.MonkeyPatch) -> None:
    # About the cut, not the CLI's retries of a refused connection (ten, over ~3 minutes;
    # each is a 'retrying' status, tested in tests/claude): one retry shows them here.
    monkeypatch.setenv("CLAUDE_CODE_MAX_RETRIES", "1")
    api = scripted([Reply("unreachable")])
    events = await collect(job("hi", workspace, docker_options(sandbox_image, network="none"),
                               idle_timeout=60))
    result = final(events)
    assert [e for e in events if isinstance(e, Status) and e.phase == "retrying"]
    assert not api.agent_requests()
    assert isinstance(result, Result) and not result.ok
    assert "Unable to connect to API" in (result.error or "")
