"""The host's own proxy (a corporate one): the egress proxy goes out through it, with its
credentials, for tunnels, plain HTTP and the API route; the policy is still checked first."""

from __future__ import annotations

import base64
from collections.abc import Iterator

import pytest

from channelcoder.egress import Credentials, EgressProxy, Policy
from channelcoder.egress.via import Route, Via
from channelcoder.redact import redact
from channelcoder.testing.fake_anthropic import FakeAnthropic

from .helpers import CorporateProxy, connect, corporate_proxy, echo_server, http_page, request
from .test_api_route import REAL_KEY, _messages

pytestmark = pytest.mark.timeout(30)

USER, PASSWORD = "alice", "corp-pa55word-0123"
BASIC = "Basic " + base64.b64encode(f"{USER}:{PASSWORD}".encode()).decode()


@pytest.fixture
def corp() -> Iterator[CorporateProxy]:
    with corporate_proxy(CorporateProxy(USER, PASSWORD)) as proxy:
        yield proxy


@pytest.fixture
def page() -> Iterator[int]:
    with http_page(b"a plain page\n") as port:
        yield port


def test_which_connections_go_through_the_hosts_proxy() -> None:
    route = Route.from_env({"HTTPS_PROXY": "http://proxy.corp:8080", "http_proxy": "proxy.corp:3128",
                            "NO_PROXY": "localhost, .internal.corp,10.0.0.0/8,example.org:8443"})
    assert str(route.for_target("api.anthropic.com", 443, tunnel=True)) == "proxy.corp:8080"
    assert str(route.for_target("pypi.org", 80, tunnel=False)) == "proxy.corp:3128"
    for host, port in [("localhost", 443), ("git.internal.corp", 443), ("internal.corp", 22),
                       ("10.1.2.3", 443), ("example.org", 8443)]:
        assert route.for_target(host, port, tunnel=True) is None, host
    assert route.for_target("example.org", 443, tunnel=True) is not None
    assert route.describe() == "proxy.corp:8080, proxy.corp:3128"
    assert not Route.from_env({}).any
    everything = Route.from_env({"ALL_PROXY": "http://p:1", "no_proxy": "*"})
    assert everything.any and everything.for_target("a.b", 443, tunnel=True) is None
    assert Via.parse("socks5://p:1080") is None  # not spoken here: said nowhere, never used


def test_a_password_in_the_proxy_url_is_never_shown() -> None:
    via = Via.parse(f"http://{USER}:{PASSWORD}@proxy.corp:8080")
    assert via is not None and via.authorization == BASIC
    assert str(via) == "proxy.corp:8080"
    shown = redact(f"proxy {PASSWORD} said {BASIC}")
    assert PASSWORD not in shown and BASIC.split()[1] not in shown


async def test_a_tunnel_goes_through_the_hosts_proxy_with_its_credentials(
        corp: CorporateProxy) -> None:
    async with echo_server() as echo, EgressProxy(
            Policy.build([f"127.0.0.1:{echo.port}"]), tcp=True,
            via=Route.from_env({"HTTPS_PROXY": corp.url})) as proxy:
        assert proxy.port is not None
        reply = await connect(proxy.port, f"127.0.0.1:{echo.port}")
        assert reply.status == 200
        await reply.stream.send(b"through two proxies")
        assert await reply.stream.receive() == b"through two proxies"
        await reply.stream.aclose()
    assert corp.asked == [("CONNECT", f"127.0.0.1:{echo.port}", BASIC)]


async def test_the_policy_is_checked_before_the_hosts_proxy_is_asked(
        corp: CorporateProxy) -> None:
    async with EgressProxy(Policy.build([]), tcp=True,
                           via=Route.from_env({"HTTPS_PROXY": corp.url})) as proxy:
        assert proxy.port is not None
        refused = await connect(proxy.port, "exfiltrate.example.net:443")
        loopback = await connect(proxy.port, "127.0.0.1:22")
    assert refused.status == 403 and loopback.status == 403
    assert corp.asked == []


async def test_a_name_only_the_hosts_proxy_can_resolve_is_left_to_it(
        corp: CorporateProxy) -> None:
    async with EgressProxy(Policy.build(["only-the-corp-dns.invalid"]), tcp=True,
                           via=Route.from_env({"HTTPS_PROXY": corp.url})) as proxy:
        assert proxy.port is not None
        reply = await connect(proxy.port, "only-the-corp-dns.invalid:443")
    assert ("CONNECT", "only-the-corp-dns.invalid:443", BASIC) in corp.asked
    assert reply.status == 502  # the test's proxy cannot resolve it either; it was asked


async def test_a_host_proxy_that_refuses_is_a_502_that_says_so() -> None:
    with corporate_proxy(CorporateProxy(USER, "not-the-password")) as corp:
        async with echo_server() as echo, EgressProxy(
                Policy.build([f"127.0.0.1:{echo.port}"]), tcp=True,
                via=Route.from_env({"HTTPS_PROXY": f"http://{USER}:{PASSWORD}@127.0.0.1:{corp.port}"})
        ) as proxy:
            assert proxy.port is not None
            reply = await connect(proxy.port, f"127.0.0.1:{echo.port}")
    assert reply.status == 502
    assert f"your proxy 127.0.0.1:{corp.port} answered 407".encode() in reply.body
    assert PASSWORD.encode() not in reply.body


async def test_plain_http_goes_to_the_hosts_proxy_in_absolute_form(
        corp: CorporateProxy, page: int) -> None:
    async with EgressProxy(Policy.build([f"127.0.0.1:{page}"]), tcp=True,
                           via=Route.from_env({"http_proxy": corp.url})) as proxy:
        assert proxy.port is not None
        reply = await request(proxy.port, f"GET http://127.0.0.1:{page}/index HTTP/1.1\r\n"
                                          f"Host: 127.0.0.1:{page}\r\n\r\n".encode())
    assert reply.status == 200 and reply.body == b"a plain page\n"
    assert corp.asked == [("GET", f"http://127.0.0.1:{page}/index", BASIC)]


async def test_the_api_route_goes_through_the_hosts_proxy_with_the_real_credential(
        corp: CorporateProxy) -> None:
    with FakeAnthropic() as upstream:
        async with EgressProxy(Policy.build([]), Credentials(api_key=REAL_KEY), tcp=True,
                               upstream=upstream.url,
                               via=Route.from_env({"HTTP_PROXY": corp.url})) as proxy:
            assert proxy.port is not None
            reply = await request(proxy.port, _messages("x-api-key: placeholder-is-replaced\r\n"))
    assert reply.status == 200
    (asked,) = corp.asked
    assert asked == ("POST", f"http://127.0.0.1:{upstream.port}/v1/messages?beta=true", BASIC)
    assert "proxy-authorization" not in upstream.requests[0].headers


async def test_a_host_proxy_that_hangs_up_is_a_502_too() -> None:
    import anyio

    listener = await anyio.create_tcp_listener(local_host="127.0.0.1", local_port=0)
    port = int(listener.extra(anyio.abc.SocketAttribute.local_port))

    async def hang_up(stream: anyio.abc.SocketStream) -> None:
        await stream.receive()
        await stream.aclose()

    async with anyio.create_task_group() as group:
        group.start_soon(listener.serve, hang_up)
        async with EgressProxy(Policy.build(["127.0.0.1:9"]), tcp=True,
                               via=Route.from_env({"HTTPS_PROXY": f"127.0.0.1:{port}"})) as proxy:
            assert proxy.port is not None
            reply = await connect(proxy.port, "127.0.0.1:9")
        group.cancel_scope.cancel()
    assert reply.status == 502 and f"your proxy 127.0.0.1:{port}".encode() in reply.body
