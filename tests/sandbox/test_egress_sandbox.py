"""`proxy` network mode end to end: real engine, the real CLI inside, the scripted model as the
proxy's upstream (on loopback — no `network: host` needed).

Inside, the credential is a placeholder everywhere while the model receives the real one; the
container has no route but the proxy; what the proxy refuses is a NetworkBlocked event; a
loopback server named exactly in the allowlist is reachable through it.
"""

from __future__ import annotations

import io
import os
import subprocess
import sys
import tarfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import anyio
import pytest

from channelcoder import stream
from channelcoder.claude.events import AnyEvent, NetworkBlocked, Result, ToolResult
from channelcoder.testing.fake_anthropic import DUMMY_KEY, Reply, ToolCall
from tests.egress.helpers import CorporateProxy, corporate_proxy, http_page
from tests.plugins.docker import RUN_ID, RUN_LABEL

pytestmark = [pytest.mark.docker, pytest.mark.usefixtures("claude_bin", "no_leaked_containers")]
GUARD = 120.0
VIA_PROXY = "curl -fsS -m 10 --noproxy '' -x http://127.0.0.1:3128"


@pytest.fixture
def local_service() -> Iterator[int]:
    """A service on the host's loopback, as a user's dev server would be."""
    with http_page(b"the host's local service\n") as port:
        yield port


def proxied(image: str, **extra: Any) -> dict[str, Any]:
    return {"image": image, "network": "proxy", "keep_warm": 0, **extra}


async def run(prompt: str, workspace: Path, docker: dict[str, Any]) -> list[AnyEvent]:
    with anyio.fail_after(GUARD):
        events = [e async for e in stream(prompt, workspace=workspace, docker=docker)]
    assert isinstance(events[-1], Result) and events[-1].ok, events[-1]
    return events


def output(events: list[AnyEvent]) -> str:
    return "\n".join(e.output for e in events if isinstance(e, ToolResult))


async def test_the_credential_is_a_placeholder_inside_and_real_upstream(
        scripted: Any, sandbox_image: str, git_repo: Path) -> None:
    api = scripted([ToolCall("Bash", {"command": "env; cat /proc/*/environ 2>/dev/null | tr '\\0' '\\n'; "
                                                 "grep -r . /channelcoder/claude 2>/dev/null | head -200"}),
                    Reply("looked")])
    events = await run("look around", git_repo, proxied(sandbox_image))
    seen = output(events)
    assert "ANTHROPIC_API_KEY=sk-ant-api03-channelcoder-placeholder" in seen
    assert "ANTHROPIC_BASE_URL=http://127.0.0.1:3128" in seen
    assert DUMMY_KEY not in seen
    assert {r.headers.get("x-api-key") for r in api.agent_requests()} == {DUMMY_KEY}


async def test_there_is_no_way_out_but_the_proxy_and_each_refusal_is_an_event(
        scripted: Any, sandbox_image: str, git_repo: Path, local_service: int) -> None:
    probes = [
        "curl -sS -m 5 https://example.com -o /dev/null; echo example=$?",
        f"{VIA_PROXY} http://127.0.0.1:{local_service}/ ; echo loopback=$?",
        f"{VIA_PROXY} http://169.254.169.254/latest/meta-data/ ; echo metadata=$?",
        f"{VIA_PROXY} http://172.17.0.1:{local_service}/ ; echo bridge-via-proxy=$?",
        "curl -sS -m 5 --noproxy '*' http://172.17.0.1/ ; echo bridge-direct=$?",
        "getent hosts example.com; echo dns=$?",
        "(echo x > /dev/udp/1.1.1.1/53) 2>&1; echo udp=$?",
    ]
    scripted([ToolCall("Bash", {"command": " ; ".join(probes)}), Reply("probed")])
    events = await run("probe the network", git_repo, proxied(sandbox_image))
    seen = output(events)
    for probe in ("example", "loopback", "metadata", "bridge-via-proxy", "bridge-direct", "dns",
                  "udp"):
        assert f"{probe}=0" not in seen, (probe, seen)
    assert "the host's local service" not in seen
    blocked = {(e.host, e.port): e.reason for e in events if isinstance(e, NetworkBlocked)}
    assert ("example.com", 443) in blocked
    assert "loopback" in blocked[("127.0.0.1", local_service)]
    assert "metadata" in blocked[("169.254.169.254", 80)]
    assert "private" in blocked[("172.17.0.1", local_service)]


async def test_a_host_named_in_the_allowlist_is_reachable(
        scripted: Any, sandbox_image: str, git_repo: Path, local_service: int) -> None:
    scripted([ToolCall("Bash", {"command": f"{VIA_PROXY} http://127.0.0.1:{local_service}/"}),
              Reply("fetched")])
    events = await run("fetch it", git_repo,
                       proxied(sandbox_image, network_allow=[f"127.0.0.1:{local_service}"]))
    assert "the host's local service" in output(events)
    assert not [e for e in events if isinstance(e, NetworkBlocked)]


def test_the_cli_prints_each_refusal_and_counts_them(scripted: Any, sandbox_image: str,
                                                     git_repo: Path) -> None:
    scripted([ToolCall("Bash", {"command": "curl -sS -m 5 https://example.com -o /dev/null"}),
              Reply("blocked")])
    done = subprocess.run([sys.executable, "-m", "channelcoder", "run", "--docker",
                           "--docker-image", sandbox_image, "--network", "proxy",
                           "--allow-host", "registries", "--verbose", "-p", "fetch"],
                          cwd=git_repo, capture_output=True, text=True, timeout=GUARD)
    assert done.returncode == 0, done.stderr
    assert "network: blocked example.com:443" in done.stderr
    assert "1 connection(s) blocked" in done.stderr
    assert "network: egress proxy; allowed: 127.0.0.1:" in done.stderr
    assert "(the API), registries" in done.stderr
    assert "--network none" in done.stderr
    assert DUMMY_KEY not in done.stderr + done.stdout


def test_behind_a_corporate_proxy_the_egress_proxy_goes_out_through_it(
        scripted: Any, sandbox_image: str, git_repo: Path) -> None:
    """The host's HTTP(S)_PROXY is the egress proxy's way out; the sandbox never sees it."""
    with corporate_proxy(CorporateProxy("alice", "corp-pa55word-0123")) as corp:
        api = scripted([ToolCall("Bash", {"command": "env | grep -i proxy"}), Reply("seen")])
        env = {**os.environ, "HTTPS_PROXY": corp.url, "HTTP_PROXY": corp.url}
        for name in ("NO_PROXY", "no_proxy", "http_proxy", "https_proxy"):
            env.pop(name, None)
        done = subprocess.run([sys.executable, "-m", "channelcoder", "run", "--docker-image",
                               sandbox_image, "--verbose", "--json", "-p", "show the proxies"],
                              cwd=git_repo, env=env, capture_output=True, text=True,
                              timeout=GUARD)
    assert done.returncode == 0, done.stderr[-3000:]
    assert f"out through your proxy 127.0.0.1:{corp.port}" in done.stdout + done.stderr
    posts = [target for method, target, _ in corp.asked if method == "POST"]
    assert posts and all(t.startswith(f"http://127.0.0.1:{api.port}/v1/messages") for t in posts)
    inside = "\n".join(api.agent_requests()[-1].texts())
    assert "HTTPS_PROXY=http://127.0.0.1:3128" in inside
    assert str(corp.port) not in inside and "corp-pa55word" not in inside
    assert "corp-pa55word" not in done.stdout + done.stderr


def test_an_image_without_node_is_refused_in_proxy_mode_with_a_hint(
        scripted: Any, sandbox_image: str, git_repo: Path, docker_client: Any) -> None:
    """The way out is a Node forwarder: an image of the user's without node is said at once,
    with what to do — not a job whose API calls fail one retry after another."""
    ref = f"channelcoder-test-nonode:{RUN_ID}"
    context = io.BytesIO()
    with tarfile.open(fileobj=context, mode="w") as tar:
        data = (f"FROM {sandbox_image}\nUSER root\n"
                "RUN rm -f \"$(command -v node)\" && ! command -v node\n").encode()
        info = tarfile.TarInfo("Dockerfile")
        info.size = len(data)
        tar.addfile(info, io.BytesIO(data))
    context.seek(0)
    for line in docker_client.api.build(fileobj=context, custom_context=True, tag=ref,
                                        decode=True, rm=True, labels={RUN_LABEL: RUN_ID}):
        assert "error" not in line, line
    try:
        scripted([Reply("never asked")])
        done = subprocess.run([sys.executable, "-m", "channelcoder", "run", "--docker-image", ref,
                               "-p", "hi"], cwd=git_repo, capture_output=True, text=True,
                              timeout=GUARD)
        assert done.returncode != 0
        assert f"the image {ref} has no 'node'" in done.stderr
        assert 'docker.network = "open"' in done.stderr and "nodejs" in done.stderr
        assert "Traceback" not in done.stderr
    finally:
        docker_client.images.remove(ref, force=True)


@pytest.mark.parametrize("name, header", [
    ("CLAUDE_CODE_OAUTH_TOKEN", "authorization"), ("ANTHROPIC_AUTH_TOKEN", "authorization")])
async def test_a_token_is_nowhere_in_the_sandbox_while_the_model_gets_it(
        scripted: Any, sandbox_image: str, git_repo: Path, monkeypatch: pytest.MonkeyPatch,
        name: str, header: str) -> None:
    """Not in the environment, any process's, the config dir, nor any file of the sandbox (the
    search pattern is spelled backwards in the command, which the transcript records)."""
    secret = f"sk-ant-real-{name.lower().replace('_', '-')}-0123456789"
    api = scripted([ToolCall("Bash", {"command": (
        f"s=$(echo {secret[::-1]} | rev); env | grep -c \"$s\"; "
        "grep -c \"$s\" /proc/*/environ | grep -v ':0$'; "
        "grep -rlsF \"$s\" / --exclude-dir=proc --exclude-dir=sys; echo searched")}),
        Reply("searched")])
    monkeypatch.delenv("ANTHROPIC_API_KEY")
    monkeypatch.setenv(name, secret)
    events = await run("search for it", git_repo, proxied(sandbox_image))
    assert output(events).strip() == "0\nsearched"
    assert {r.headers.get(header) for r in api.agent_requests()} == {f"Bearer {secret}"}
