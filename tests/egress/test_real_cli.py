"""The pinned Claude CLI (on this machine, no container) through the egress proxy: given only the
placeholder login file, it runs a turn, never tries to refresh the token itself, and the
scripted model receives the host login's real (refreshed) token."""

from __future__ import annotations

import json
import time
from pathlib import Path

import anyio
import pytest

from channelcoder.claude.events import NetworkBlocked
from channelcoder.egress import Credentials, EgressProxy, Policy
from channelcoder.egress.credentials import TOKEN_URL_ENV
from channelcoder.testing.fake_anthropic import FakeAnthropic, Reply

from .helpers import TokenEndpoint, token_endpoint

pytestmark = pytest.mark.timeout(120)


@pytest.mark.parametrize("route", ["no_proxy", "alias"])
async def test_the_cli_runs_on_the_placeholder_login_and_the_model_gets_the_real_token(
        tmp_path: Path, claude_bin: Path, route: str) -> None:
    """The API route is reached either with NO_PROXY naming the forwarder's address, or, with
    the CLI sending its API requests through HTTP_PROXY, by the proxy knowing that address."""
    host_config = tmp_path / "host-claude"
    host_config.mkdir()
    login = host_config / ".credentials.json"
    login.write_text(json.dumps({"claudeAiOauth": {
        "accessToken": "sk-ant-oat01-host-access-about-to-expire-0123",
        "refreshToken": "sk-ant-ort01-host-refresh-0123456789",
        "expiresAt": int(time.time() * 1000) + 30_000,
        "scopes": ["user:inference", "user:profile", "user:sessions:claude_code"],
        "subscriptionType": "max"}}))
    login.chmod(0o600)
    sandbox_config = tmp_path / "sandbox-claude"
    sandbox_config.mkdir()
    blocked: list[NetworkBlocked] = []
    with token_endpoint(TokenEndpoint()) as endpoint, FakeAnthropic([Reply("bonjour")]) as model:
        credentials = Credentials.from_environment({"CLAUDE_CONFIG_DIR": str(host_config),
                                                    TOKEN_URL_ENV: endpoint.url})
        placeholder = credentials.sandbox_credentials_file()
        assert placeholder is not None
        (sandbox_config / ".credentials.json").write_text(placeholder)
        proxy = EgressProxy(Policy.build([]), credentials, tcp=True, upstream=model.url,
                            on_blocked=blocked.append)
        async with proxy:
            url = f"http://127.0.0.1:{proxy.port}"
            if route == "alias":
                proxy.api_aliases = (f"{url}/",)
            env = {"PATH": "/usr/bin:/bin", "HOME": str(tmp_path), "CLAUDE_CONFIG_DIR":
                   str(sandbox_config), "ANTHROPIC_BASE_URL": url, "HTTPS_PROXY": url,
                   "HTTP_PROXY": url,
                   **({"NO_PROXY": "127.0.0.1,localhost"} if route == "no_proxy" else {}),
                   "DISABLE_AUTOUPDATER": "1",
                   "CLAUDE_CODE_DISABLE_NONESSENTIAL_TRAFFIC": "1"}
            done = await anyio.run_process(
                [str(claude_bin), "-p", "--output-format", "json", "--tools", "Bash",
                 "--", "Say hello in French"], env=env, cwd=tmp_path, check=False)
    out = done.stdout.decode()
    assert done.returncode == 0, out + done.stderr.decode()
    assert json.loads(out)["result"] == "bonjour"
    assert model.requests, "the CLI sent nothing to the API route"
    assert {r.headers.get("authorization") for r in model.requests} == {
        f"Bearer {endpoint.access}"}
    assert len(endpoint.requests) == 1  # the proxy's refresh; the CLI never tried one
    assert [b for b in blocked if "claude.com" in b.host] == []
    assert "sk-ant-oat01-host" not in (sandbox_config / ".credentials.json").read_text()
    assert json.loads(login.read_text())["claudeAiOauth"]["accessToken"] == endpoint.access


@pytest.mark.parametrize("name, header", [("ANTHROPIC_API_KEY", "x-api-key"),
                                          ("CLAUDE_CODE_OAUTH_TOKEN", "authorization"),
                                          ("ANTHROPIC_AUTH_TOKEN", "authorization")])
async def test_the_cli_runs_on_a_placeholder_variable_and_the_model_gets_the_real_value(
        tmp_path: Path, claude_bin: Path, name: str, header: str) -> None:
    real = f"sk-ant-real-{name.lower()}-0123456789"
    credentials = Credentials.from_environment({name: real, "HOME": str(tmp_path)})
    inside = credentials.sandbox_env()
    assert list(inside) == [name] and real not in inside[name]
    with FakeAnthropic([Reply("bonjour")]) as model:
        async with EgressProxy(Policy.build([]), credentials, tcp=True,
                               upstream=model.url) as proxy:
            url = f"http://127.0.0.1:{proxy.port}"
            env = {"PATH": "/usr/bin:/bin", "HOME": str(tmp_path), "CLAUDE_CONFIG_DIR":
                   str(tmp_path / "config"), "ANTHROPIC_BASE_URL": url, "HTTPS_PROXY": url,
                   "HTTP_PROXY": url, "NO_PROXY": "127.0.0.1", "DISABLE_AUTOUPDATER": "1",
                   "CLAUDE_CODE_DISABLE_NONESSENTIAL_TRAFFIC": "1", **inside}
            done = await anyio.run_process(
                [str(claude_bin), "-p", "--output-format", "json", "--tools", "Bash",
                 "--", "Say hello in French"], env=env, cwd=tmp_path, check=False)
    assert done.returncode == 0, done.stdout.decode() + done.stderr.decode()
    assert json.loads(done.stdout)["result"] == "bonjour"
    sent = {r.headers.get(header) for r in model.requests}
    assert sent == {real if header == "x-api-key" else f"Bearer {real}"}
