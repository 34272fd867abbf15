"""The seed's Docker-mode examples, end to end: real engine, real image, real CLI inside.

The only fake is the model (scripted, on 127.0.0.1; the sandbox uses network host).
"""

from __future__ import annotations

import json
import os
import stat
from pathlib import Path
from typing import Any

import pytest

from channelcoder.claude.events import Init, Result, Status, ToolResult
from channelcoder.sandbox.engine.proxies import PROXY_VARS
from channelcoder.sandbox.image.resolve import pinned_claude_version
from channelcoder.sandbox.manager import SandboxManager
from channelcoder.testing.fake_anthropic import Reply, ToolCall
from channelcoder.trust import set_trusted
from tests.plugins.docker import docker_options

from .helpers import collect, final, job, tool_outputs

pytestmark = pytest.mark.docker


@pytest.fixture
def workspace(tmp_path: Path) -> Path:
    ws = tmp_path / "ws"
    ws.mkdir()
    (ws / "app.py").write_text("GREETING = 'hello'\n")
    return ws


async def test_a_scripted_job_edits_a_file_and_the_host_user_keeps_it(
        scripted: Any, sandbox_image: str, workspace: Path) -> None:
    mode_before = stat.S_IMODE(os.stat(workspace).st_mode)
    scripted([
        ToolCall("Read", {"file_path": "/workspace/app.py"}),
        ToolCall("Edit", {"file_path": "/workspace/app.py", "old_string": "'hello'",
                          "new_string": "'hello, sandbox'"}),
        ToolCall("Bash", {"command": "mkdir -p out && echo made > out/new.txt && id -u"}),
        Reply("Edited."),
    ])
    events = await collect(job("edit the greeting", workspace, docker_options(sandbox_image)))
    result = final(events)
    assert isinstance(result, Result) and result.ok, result
    assert (workspace / "app.py").read_text() == "GREETING = 'hello, sandbox'\n"
    assert tool_outputs(events)[-1].output.strip() == str(os.getuid())
    for path in (workspace / "app.py", workspace / "out", workspace / "out" / "new.txt"):
        info = path.stat()
        assert (info.st_uid, info.st_gid) == (os.getuid(), os.getgid()), path
    assert stat.S_IMODE(os.stat(workspace).st_mode) == mode_before


async def test_the_workspace_is_at_slash_workspace_and_docker_env_reaches_the_cli(
        scripted: Any, sandbox_image: str, workspace: Path) -> None:
    scripted([ToolCall("Bash", {"command": "pwd; cat app.py; echo \"$CC_TEST_GREETING\"; "
                                           "echo \"$HOME\"; git config --get-all safe.directory"}),
              Reply("ok")])
    docker = docker_options(sandbox_image, env={"CC_TEST_GREETING": "hi-from-docker-env"})
    events = await collect(job("where am I", workspace, docker))
    init = next(e for e in events if isinstance(e, Init))
    assert init.cwd == "/workspace"
    lines = tool_outputs(events)[0].output.splitlines()
    assert lines == ["/workspace", "GREETING = 'hello'", "hi-from-docker-env", "/home/sandbox", "*"]
    assert isinstance(final(events), Result)


async def test_custom_mounts_and_read_only_is_enforced_inside(
        scripted: Any, sandbox_image: str, workspace: Path, tmp_path: Path) -> None:
    data = tmp_path / "data"
    data.mkdir()
    (data / "in.txt").write_text("input data\n")
    scratch = tmp_path / "scratch"
    scratch.mkdir()
    scripted([
        ToolCall("Bash", {"command": "cat /data/in.txt && echo out > /scratch/written.txt && "
                                     "echo wrote-rw"}),
        ToolCall("Bash", {"command": "echo nope > /data/out.txt"}),
        Reply("done"),
    ])
    docker = docker_options(sandbox_image, mounts=[f"{data}:/data:ro", "../scratch:/scratch:rw"])
    events = await collect(job("use the mounts", workspace, docker))
    outputs = tool_outputs(events)
    assert outputs[0].output.splitlines() == ["input data", "wrote-rw"]
    assert (scratch / "written.txt").read_text() == "out\n"
    denied = outputs[1]
    assert denied.is_error and "Read-only file system" in denied.output
    assert not (data / "out.txt").exists()
    assert isinstance(final(events), Result)


async def test_an_auto_detected_dockerfile_is_built_and_used(
        scripted: Any, sandbox_image: str, workspace: Path) -> None:
    (workspace / "Dockerfile").write_text(
        f"FROM {sandbox_image}\n# channelcoder: sandbox\nCOPY marker.txt /opt/marker.txt\n")
    (workspace / "marker.txt").write_text("built from the workspace Dockerfile\n")
    set_trusted(workspace)
    scripted([ToolCall("Bash", {"command": "cat /opt/marker.txt"}), Reply("ok")])
    events = await collect(job("read the marker", workspace, {}))
    assert any(getattr(e, "phase", "") == "building-image" for e in events)
    assert tool_outputs(events)[0].output.strip() == "built from the workspace Dockerfile"
    assert isinstance(final(events), Result)


async def test_a_prebuilt_image_is_used_as_is(scripted: Any, sandbox_image: str,
                                              workspace: Path) -> None:
    scripted([ToolCall("Bash", {"command": "claude --version"}), Reply("ok")])
    events = await collect(job("version?", workspace, docker_options(sandbox_image)))
    assert not any(getattr(e, "phase", "") == "building-image" for e in events)
    assert pinned_claude_version() in tool_outputs(events)[0].output
    assert isinstance(final(events), Result)


async def test_a_session_resumes_in_a_new_container(scripted: Any, sandbox_image: str,
                                                    workspace: Path) -> None:
    api = scripted([Reply("first answer"), Reply("second answer")])
    docker = docker_options(sandbox_image)
    first = final(await collect(job("remember the word pineapple", workspace, docker,
                                    session="fruit")))
    assert isinstance(first, Result) and first.ok and first.session_id
    second = final(await collect(job("what was the word?", workspace, docker, session="fruit",
                                     resume=first.session_id)))
    assert isinstance(second, Result) and second.ok, second
    last = api.agent_requests()[-1]
    assert "remember the word pineapple" in "\n".join(last.texts())
    assert "first answer" in "\n".join(last.texts())


async def test_tool_errors_inside_reach_the_event_stream(scripted: Any, sandbox_image: str,
                                                         workspace: Path) -> None:
    scripted([ToolCall("Bash", {"command": "ls /definitely-missing"}), Reply("saw it")])
    events = await collect(job("list", workspace, docker_options(sandbox_image)))
    result = next(e for e in events if isinstance(e, ToolResult))
    assert result.is_error and "No such file or directory" in result.output


async def test_a_job_sees_the_docker_config_proxies_and_verbose_hides_their_password(
        scripted: Any, sandbox_image: str, tmp_path: Path,
        monkeypatch: pytest.MonkeyPatch) -> None:
    for name in PROXY_VARS:
        monkeypatch.delenv(name, raising=False)
    config = tmp_path / "docker"
    config.mkdir()
    (config / "config.json").write_text(json.dumps({"proxies": {"default": {
        "httpsProxy": "http://alice:vErY-s3cret-pw@127.0.0.1:9", "noProxy": "127.0.0.1"}}}))
    monkeypatch.setenv("DOCKER_CONFIG", str(config))
    workspace = tmp_path / "ws"
    workspace.mkdir()
    scripted([ToolCall("Bash", {"command": "echo \"$HTTPS_PROXY|$https_proxy|$NO_PROXY\""}),
              Reply("ok")])
    events = await collect(job("env", workspace, docker_options(sandbox_image, network="host"),
                               verbose=True, manager=SandboxManager()))
    result = final(events)
    assert isinstance(result, Result) and result.ok, result
    assert tool_outputs(events)[0].output.strip() == (
        "http://alice:vErY-s3cret-pw@127.0.0.1:9|http://alice:vErY-s3cret-pw@127.0.0.1:9|"
        "127.0.0.1")
    shown = "\n".join(e.message for e in events if isinstance(e, Status))
    assert "docker run" in shown and "127.0.0.1:9" in shown and "vErY-s3cret-pw" not in shown
