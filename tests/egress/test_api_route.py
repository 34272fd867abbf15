"""The API route: origin-form requests go to the real upstream (the scripted model here) with the
real credential in place of the sandbox's placeholder, streamed as the upstream produces them; a
host login is refreshed on the host and written back there."""

from __future__ import annotations

import json
import logging
import os
import ssl
import stat
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import anyio
import pytest

from channelcoder.egress import Credentials, EgressProxy, Policy
from channelcoder.egress.credentials import (
    API_KEY_PLACEHOLDER,
    AUTH_TOKEN_PLACEHOLDER,
    LOGIN_PLACEHOLDER,
    OAUTH_PLACEHOLDER,
    TOKEN_URL_ENV,
)
from channelcoder.testing.fake_anthropic import FakeAnthropic, Reply, Turn, iter_sse

from .helpers import TokenEndpoint, request, token_endpoint

pytestmark = pytest.mark.timeout(30)

REAL_KEY = "sk-ant-api03-the-users-real-key-0123456789abcdef"
REAL_OAUTH = "sk-ant-oat01-the-users-real-oauth-token-0123456789"
REAL_AUTH = "the-users-real-gateway-token-0123456789"


def _messages(headers: str, *, stream: bool = False, tools: bool = False) -> bytes:
    body = json.dumps({"model": "claude-scripted", "max_tokens": 64, "stream": stream,
                       "messages": [{"role": "user", "content": "hi"}],
                       **({"tools": [{"name": "Bash", "input_schema": {}}]} if tools else {})})
    return (f"POST /v1/messages?beta=true HTTP/1.1\r\nHost: 127.0.0.1\r\n{headers}"
            f"Content-Type: application/json\r\nContent-Length: {len(body)}\r\n\r\n{body}"
            ).encode()


@pytest.mark.parametrize("credentials, header, placeholder, real", [
    (Credentials(api_key=REAL_KEY), "x-api-key", API_KEY_PLACEHOLDER, REAL_KEY),
    (Credentials(oauth_token=REAL_OAUTH), "authorization", f"Bearer {OAUTH_PLACEHOLDER}",
     f"Bearer {REAL_OAUTH}"),
    (Credentials(auth_token=REAL_AUTH), "authorization", f"Bearer {AUTH_TOKEN_PLACEHOLDER}",
     f"Bearer {REAL_AUTH}"),
])
async def test_the_upstream_receives_the_real_credential_for_the_placeholder(
        credentials: Credentials, header: str, placeholder: str, real: str) -> None:
    with FakeAnthropic() as upstream:
        async with EgressProxy(Policy.build([]), credentials, tcp=True,
                               upstream=upstream.url) as proxy:
            assert proxy.port is not None
            reply = await request(proxy.port, _messages(f"{header}: {placeholder}\r\n"
                                                        "anthropic-version: 2023-06-01\r\n"))
            assert reply.status == 200
            assert json.loads(reply.body)["content"][0]["text"] == "Scripted side reply."
            # The same connection serves the next request (kept alive on both sides).
            again = await request(proxy.port, _messages(f"{header}: something-else\r\n"),
                                  stream=reply.stream)
            assert again.status == 200
            await reply.stream.aclose()
    first, second = upstream.requests
    assert first.path == "/v1/messages?beta=true"
    assert first.headers[header] == real
    assert first.headers["host"] == f"127.0.0.1:{upstream.port}"
    assert first.headers["anthropic-version"] == "2023-06-01"
    assert first.body["messages"] == [{"role": "user", "content": "hi"}]
    assert second.headers[header] == "something-else"  # only a placeholder is replaced


async def test_the_upstream_path_prefix_is_kept() -> None:
    with FakeAnthropic() as upstream:
        async with EgressProxy(Policy.build([]), Credentials(api_key=REAL_KEY), tcp=True,
                               upstream=upstream.url + "/gateway/anthropic/") as proxy:
            assert proxy.port is not None
            reply = await request(proxy.port, _messages(f"x-api-key: {API_KEY_PLACEHOLDER}\r\n"))
    assert reply.status == 200
    assert upstream.requests[0].path == "/gateway/anthropic/v1/messages?beta=true"


async def test_server_sent_events_arrive_as_the_upstream_produces_them() -> None:
    turn = Turn([Reply("one two three four five six")], chunks=6, delay=0.25)
    with FakeAnthropic([turn]) as upstream:
        async with EgressProxy(Policy.build([]), Credentials(api_key=REAL_KEY), tcp=True,
                               upstream=upstream.url) as proxy:
            assert proxy.port is not None
            stream = await anyio.connect_tcp("127.0.0.1", proxy.port)
            started = time.monotonic()
            await stream.send(_messages(f"x-api-key: {API_KEY_PLACEHOLDER}\r\n", stream=True,
                                        tools=True))
            received = b""
            first_delta_at = None
            with anyio.fail_after(10):
                while True:
                    try:
                        received += await stream.receive()
                    except anyio.EndOfStream:
                        break
                    if first_delta_at is None and b"content_block_delta" in received:
                        first_delta_at = time.monotonic() - started
                    if received.endswith(b"0\r\n\r\n"):
                        break
            total = time.monotonic() - started
            await stream.aclose()
    assert first_delta_at is not None
    assert total >= 1.4  # six deltas, 0.25 s apart
    assert first_delta_at < 0.8, f"first delta after {first_delta_at:.2f}s of {total:.2f}s"
    head, _, body = received.partition(b"\r\n\r\n")
    assert b"transfer-encoding: chunked" in head.lower()
    text = b"".join(part for i, part in enumerate(body.split(b"\r\n")) if i % 2 == 1)
    events = [name for name, _ in iter_sse(text)]
    assert events[0] == "message_start" and events[-1] == "message_stop"


def _login_file(directory: Path, *, expires_in_ms: int,
                refresh: str = "sk-ant-ort01-old-refresh-0123456789") -> Path:
    directory.mkdir(parents=True, exist_ok=True)
    path = directory / ".credentials.json"
    path.write_text(json.dumps({"claudeAiOauth": {
        "accessToken": "sk-ant-oat01-old-access-0123456789",
        "refreshToken": refresh,
        "expiresAt": int(time.time() * 1000) + expires_in_ms,
        "scopes": ["user:inference", "user:profile"],
        "subscriptionType": "max"}, "otherTool": {"keep": True}}))
    path.chmod(0o600)
    return path


async def test_an_expiring_host_login_is_refreshed_on_the_host_and_written_back(
        tmp_path: Path) -> None:
    config = tmp_path / "claude-config"
    path = _login_file(config, expires_in_ms=60_000)  # inside the five-minute margin
    with token_endpoint(TokenEndpoint()) as endpoint, FakeAnthropic() as upstream:
        credentials = Credentials.from_environment({"CLAUDE_CONFIG_DIR": str(config),
                                                    TOKEN_URL_ENV: endpoint.url})
        assert credentials.login is not None and credentials.sandbox_env() == {}
        placeholder_file = credentials.sandbox_credentials_file()
        assert placeholder_file is not None
        assert "sk-ant-oat01-old" not in placeholder_file and "refresh" not in placeholder_file
        inside = json.loads(placeholder_file)["claudeAiOauth"]
        assert inside["accessToken"] == LOGIN_PLACEHOLDER
        assert inside["expiresAt"] > (time.time() + 50 * 365 * 86400) * 1000
        assert inside["subscriptionType"] == "max"
        async with EgressProxy(Policy.build([]), credentials, tcp=True,
                               upstream=upstream.url) as proxy:
            assert proxy.port is not None
            for _ in range(2):
                reply = await request(proxy.port,
                                      _messages(f"authorization: Bearer {LOGIN_PLACEHOLDER}\r\n"))
                assert reply.status == 200
    assert [r.headers["authorization"] for r in upstream.requests] == [
        f"Bearer {endpoint.access}"] * 2
    [refresh] = endpoint.requests  # the second request used the refreshed token
    assert refresh["content-type"] == "application/json"
    assert refresh["json"]["grant_type"] == "refresh_token"
    assert refresh["json"]["refresh_token"] == "sk-ant-ort01-old-refresh-0123456789"
    assert refresh["json"]["client_id"] == "9d1c250a-e61b-44d9-88ed-5944d1962f5e"
    assert "user:inference" in refresh["json"]["scope"].split()
    stored = json.loads(path.read_text())
    assert stored["otherTool"] == {"keep": True}
    oauth = stored["claudeAiOauth"]
    assert (oauth["accessToken"], oauth["refreshToken"]) == (endpoint.access, endpoint.refresh)
    assert abs(oauth["expiresAt"] - (time.time() + endpoint.expires_in) * 1000) < 60_000
    assert oauth["subscriptionType"] == "max"
    assert stat.S_IMODE(os.stat(path).st_mode) == 0o600


async def test_a_fresh_host_login_is_used_as_it_is_and_a_new_login_at_once(tmp_path: Path) -> None:
    config = tmp_path / "claude-config"
    path = _login_file(config, expires_in_ms=3_600_000)
    with token_endpoint(TokenEndpoint()) as endpoint, FakeAnthropic() as upstream:
        credentials = Credentials.from_environment({"CLAUDE_CONFIG_DIR": str(config),
                                                    TOKEN_URL_ENV: endpoint.url})
        async with EgressProxy(Policy.build([]), credentials, tcp=True,
                               upstream=upstream.url) as proxy:
            assert proxy.port is not None
            head = _messages(f"authorization: Bearer {LOGIN_PLACEHOLDER}\r\n")
            assert (await request(proxy.port, head)).status == 200
            data = json.loads(path.read_text())
            data["claudeAiOauth"]["accessToken"] = "sk-ant-oat01-logged-in-again-0123456789"
            path.write_text(json.dumps(data))
            assert (await request(proxy.port, head)).status == 200
    assert endpoint.requests == []
    assert [r.headers["authorization"] for r in upstream.requests] == [
        "Bearer sk-ant-oat01-old-access-0123456789",
        "Bearer sk-ant-oat01-logged-in-again-0123456789"]


async def test_no_credential_appears_in_an_answer_or_a_log(
        tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.DEBUG)
    config = tmp_path / "claude-config"
    _login_file(config, expires_in_ms=-1000)
    secrets = ["sk-ant-oat01-old-access-0123456789", "sk-ant-ort01-old-refresh-0123456789",
               REAL_KEY]
    with token_endpoint(TokenEndpoint(status=400, refresh=secrets[1])) as endpoint:
        login = Credentials.from_environment({"CLAUDE_CONFIG_DIR": str(config),
                                              TOKEN_URL_ENV: endpoint.url})
        async with EgressProxy(Policy.build([]), login, tcp=True,
                               upstream="http://127.0.0.1:9") as proxy:
            assert proxy.port is not None
            failed_refresh = await request(
                proxy.port, _messages(f"authorization: Bearer {LOGIN_PLACEHOLDER}\r\n"))
        async with EgressProxy(Policy.build([]), Credentials(api_key=REAL_KEY), tcp=True,
                               upstream="http://127.0.0.1:9") as proxy:
            assert proxy.port is not None
            no_upstream = await request(
                proxy.port, _messages(f"x-api-key: {API_KEY_PLACEHOLDER}\r\n"))
    assert failed_refresh.status == 502
    assert b"refreshing the Claude login failed: HTTP 400" in failed_refresh.body
    assert no_upstream.status == 502
    assert b"127.0.0.1:9" in no_upstream.body
    shown = failed_refresh.body.decode() + no_upstream.body.decode() + caplog.text
    for secret in secrets:
        assert secret not in shown
    assert repr(login).count("sk-ant") == 0
    assert REAL_KEY not in repr(Credentials(api_key=REAL_KEY))


@pytest.fixture
def tls_upstream(tmp_path: Path) -> Iterator[tuple[FakeAnthropic, Path]]:
    """The scripted model behind TLS with a certificate of its own (a CA the system lacks)."""
    cert, key = tmp_path / "upstream.pem", tmp_path / "upstream.key"
    subprocess.run(["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "1",
                    "-subj", "/CN=channelcoder test upstream", "-addext",
                    "subjectAltName=IP:127.0.0.1", "-keyout", str(key), "-out", str(cert)],
                   check=True, capture_output=True)
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.load_cert_chain(cert, key)
    model = FakeAnthropic()
    model._server.socket = context.wrap_socket(model._server.socket, server_side=True)
    with model:
        yield model, cert


async def test_the_api_route_speaks_tls_to_the_upstream_and_trusts_the_users_extra_ca(
        tls_upstream: tuple[FakeAnthropic, Path]) -> None:
    model, cert = tls_upstream
    url = f"https://127.0.0.1:{model.port}"
    head = _messages(f"x-api-key: {API_KEY_PLACEHOLDER}\r\n")
    async with EgressProxy(Policy.build([]), Credentials(api_key=REAL_KEY), tcp=True,
                           upstream=url) as proxy:
        assert proxy.port is not None
        untrusted = await request(proxy.port, head)
    async with EgressProxy(Policy.build([]), Credentials(api_key=REAL_KEY), tcp=True,
                           upstream=url, ca_bundle=cert) as proxy:
        assert proxy.port is not None
        trusted = await request(proxy.port, head)
    assert untrusted.status == 502 and b"SSL" in untrusted.body
    assert trusted.status == 200
    assert [r.headers["x-api-key"] for r in model.requests] == [REAL_KEY]
