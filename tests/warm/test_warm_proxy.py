"""Warm sessions and the standby in `proxy` network mode: real engine, CLI, scripted model.

A kept-warm container outlives the process that made it, and so would its way out: the egress
proxy is served only by the process holding the container (a turn, or the language server's
standby). Between turns nothing listens, so what a job left running has no network at all.
The standby in this mode, the default, is tested in test_standby.py.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import anyio
import pytest

from channelcoder import session
from channelcoder.claude.events import Result
from channelcoder.egress.credentials import REFRESH_MARGIN_MS, TOKEN_URL_ENV
from channelcoder.sandbox.container.egress_link import SOCKET_NAME
from channelcoder.sandbox.container.mounts import CONFIG_DIR
from channelcoder.session_cleanup import remove_session
from channelcoder.testing.fake_anthropic import DUMMY_KEY, Reply, ToolCall
from tests.egress.helpers import TokenEndpoint, token_endpoint
from tests.plugins.docker import docker_options
from tests.warm.helpers import session_container, wait_gone, warm_containers, warm_dir

pytestmark = [pytest.mark.docker, pytest.mark.usefixtures("claude_bin", "no_leaked_containers")]

GUARD = 120.0
SHOW_KEY = {"command": "echo key=$ANTHROPIC_API_KEY"}
BLOCKED = {"command": "curl -sS -m 5 https://example.com -o /dev/null; echo exit=$?"}
FIRST_TOKEN = "sk-ant-oat01-host-access-that-expires-mid-session-0123"
FIRST_REFRESH = "sk-ant-ort01-host-refresh-token-0123456789"


def cli(workspace: Path, image: str, prompt: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "channelcoder", "run", "--session", "proxied", "--docker-image",
         image, "--network", "proxy", "-p", prompt],
        cwd=workspace, env=dict(os.environ), capture_output=True, text=True, timeout=GUARD)


def test_a_warm_session_gets_its_way_out_from_each_turns_process_and_none_between(
        scripted: Any, sandbox_image: str, git_repo: Path, docker_client: Any) -> None:
    api = scripted([ToolCall("Bash", SHOW_KEY), Reply("Looked."),
                    ToolCall("Bash", BLOCKED), Reply("Blocked, as expected.")])
    first = cli(git_repo, sandbox_image, "show the key")
    assert first.returncode == 0, first.stderr
    container = session_container(docker_client, "proxied")
    socket = warm_dir(warm_containers(docker_client)[0]) / "egress" / SOCKET_NAME
    assert not socket.exists()  # kept warm, with no way out until the next turn
    # the next turn is another process: it serves the same container's proxy and hears of
    # what it refuses
    second = cli(git_repo, sandbox_image, "fetch example.com")
    assert second.returncode == 0, second.stderr
    assert session_container(docker_client, "proxied") == container
    assert "network: blocked example.com:443" in second.stderr
    assert "Blocked, as expected." in second.stdout
    requests = api.agent_requests()
    assert "key=sk-ant-api03-channelcoder-placeholder" in "\n".join(requests[1].texts())
    assert {r.headers.get("x-api-key") for r in requests} == {DUMMY_KEY}
    assert not socket.exists()
    done = subprocess.run([sys.executable, "-m", "channelcoder", "sessions", "rm", "proxied"],
                          cwd=git_repo, capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr
    wait_gone(docker_client, container)


async def test_a_session_outlives_its_login_token_which_is_refreshed_on_the_host_only(
        scripted: Any, sandbox_image: str, git_repo: Path, tmp_path: Path,
        monkeypatch: pytest.MonkeyPatch) -> None:
    """The host is logged in (no API key); its token expires between two turns of a warm
    session. The proxy refreshes it on the host; the sandbox only ever has the placeholder."""
    look = {"command": f"cat {CONFIG_DIR}/.credentials.json; echo; env | grep -i -e token -e key"}
    api = scripted([ToolCall("Bash", look), Reply("Looked."), ToolCall("Bash", look),
                    Reply("Looked again.")])
    monkeypatch.delenv("ANTHROPIC_API_KEY")
    host_config = tmp_path / "host-claude"
    host_config.mkdir()
    login = host_config / ".credentials.json"
    expires = time.time() + REFRESH_MARGIN_MS / 1000 + 8
    login.write_text(json.dumps({"claudeAiOauth": {
        "accessToken": FIRST_TOKEN, "refreshToken": FIRST_REFRESH,
        "expiresAt": int(expires * 1000), "subscriptionType": "max",
        "scopes": ["user:inference", "user:profile", "user:sessions:claude_code"]}}))
    login.chmod(0o600)
    monkeypatch.setenv("CLAUDE_CONFIG_DIR", str(host_config))
    with token_endpoint(TokenEndpoint()) as endpoint:
        monkeypatch.setenv(TOKEN_URL_ENV, endpoint.url)
        s = session("login", workspace=git_repo,
                    docker=docker_options(sandbox_image, keep_warm=60))
        one = [e async for e in s.stream("look")]
        assert isinstance(one[-1], Result) and one[-1].ok, one[-1]
        await anyio.sleep(max(0.0, expires - REFRESH_MARGIN_MS / 1000 - time.time() + 0.5))
        two = [e async for e in s.stream("look again")]
        assert isinstance(two[-1], Result) and two[-1].ok, two[-1]
    tokens = [r.headers.get("authorization") for r in api.agent_requests()]
    assert tokens[:2] == [f"Bearer {FIRST_TOKEN}"] * 2
    assert tokens[2:] == [f"Bearer {endpoint.access}"] * 2
    assert len(endpoint.requests) == 1
    assert endpoint.requests[0]["json"]["refresh_token"] == FIRST_REFRESH
    written = json.loads(login.read_text())["claudeAiOauth"]
    assert (written["accessToken"], written["refreshToken"]) == (endpoint.access, endpoint.refresh)
    seen = "\n".join(t for r in api.agent_requests() for t in r.texts())
    assert "channelcoder-placeholder" in seen
    for secret in (FIRST_TOKEN, FIRST_REFRESH, endpoint.access, endpoint.refresh):
        assert secret not in seen
    assert remove_session("login")
