"""Host paths in claude's argv, as the sandbox sees them: MCP config, --add-dir."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from channelcoder.claude.events import Result
from channelcoder.errors import ConfigError
from channelcoder.redact import redact
from channelcoder.sandbox.container.hostpaths import sandbox_argv
from channelcoder.sandbox.container.mounts import Mount
from channelcoder.testing.fake_anthropic import Reply, ToolCall
from tests.plugins.docker import docker_options

from .helpers import collect, final, job, tool_outputs


def argv(*flags: str) -> list[str]:
    return ["claude", "-p", *flags, "--", "the prompt --mcp-config stays"]


def test_an_mcp_config_file_is_inlined_with_workspace_paths_translated(tmp_path: Path) -> None:
    ws = tmp_path / "ws"
    (ws / "tools").mkdir(parents=True)
    (ws / "tools" / "server.py").write_text("")
    config = tmp_path / "mcp.json"
    config.write_text(json.dumps({"mcpServers": {
        "local": {"command": str(ws / "tools" / "server.py"), "args": ["--root", str(ws)],
                  "env": {"TOKEN": "mcp-secret-token-123"}},
        "npx": {"command": "npx", "args": ["-y", "some-server"]},
        "shell": {"command": "/bin/sh", "args": ["-c", "exit 0"]}}}))
    out, mounts = sandbox_argv(argv("--mcp-config", str(config)), cwd=ws)
    inline = json.loads(out[out.index("--mcp-config") + 1])
    assert inline["mcpServers"]["local"]["command"] == "/workspace/tools/server.py"
    assert inline["mcpServers"]["local"]["args"] == ["--root", "/workspace"]
    assert inline["mcpServers"]["npx"] == {"command": "npx", "args": ["-y", "some-server"]}
    assert inline["mcpServers"]["shell"]["command"] == "/bin/sh"
    assert out[-1] == "the prompt --mcp-config stays" and mounts == []
    assert "mcp-secret-token-123" not in redact(" ".join(out))


def test_an_mcp_server_running_a_host_program_is_refused(tmp_path: Path) -> None:
    ws = tmp_path / "ws"
    ws.mkdir()
    program = tmp_path / "host-only" / "server"
    program.parent.mkdir()
    program.write_text("")
    inline = json.dumps({"mcpServers": {"mine": {"command": str(program)}}})
    with pytest.raises(ConfigError) as caught:
        sandbox_argv(argv("--mcp-config", inline), cwd=ws)
    assert "MCP server 'mine' names the host command" in caught.value.message
    assert ".channelcoder/Dockerfile" in caught.value.hint


def test_add_dirs_map_into_the_workspace_or_are_mounted_at_their_path(tmp_path: Path) -> None:
    ws = tmp_path / "ws"
    (ws / "sub").mkdir(parents=True)
    outside = tmp_path / "shared"
    outside.mkdir()
    out, mounts = sandbox_argv(argv("--add-dir", "sub", "--add-dir", str(ws / "sub"),
                                    "--add-dir", "../shared"), cwd=ws)
    values = [out[i + 1] for i, flag in enumerate(out) if flag == "--add-dir"]
    assert values == ["/workspace/sub", "/workspace/sub", str(outside)]
    assert mounts == [Mount(outside, str(outside))]
    with pytest.raises(ConfigError, match="root directory"):
        sandbox_argv(argv("--add-dir", "/"), cwd=ws)


@pytest.mark.docker
async def test_an_add_dir_outside_the_workspace_is_reachable_inside(
        scripted: Any, sandbox_image: str, tmp_path: Path) -> None:
    ws = tmp_path / "ws"
    ws.mkdir()
    shared = tmp_path / "shared"
    shared.mkdir()
    (shared / "doc.txt").write_text("shared knowledge\n")
    scripted([ToolCall("Bash", {"command": f"cat {shared}/doc.txt"}), Reply("read it")])
    events = await collect(job("read the shared doc", ws, docker_options(sandbox_image),
                               add_dirs=[str(shared)]))
    assert tool_outputs(events)[0].output.strip() == "shared knowledge"
    assert isinstance(final(events), Result)
