"""The egress proxy on real loopback sockets: CONNECT, plain HTTP, the address rules, the ask hook,
limits. The API route and credentials are in test_api_route.py."""

from __future__ import annotations

import time
from pathlib import Path

import anyio
import anyio.abc
import pytest

from channelcoder.egress import EgressProxy, Limits, Policy, ProxyThread
from channelcoder.testing.fake_anthropic import FakeAnthropic

from .helpers import blocked_log, connect, echo_server, request

pytestmark = pytest.mark.timeout(30)


async def test_an_allowed_connect_is_a_tunnel_both_ways() -> None:
    async with echo_server() as echo, EgressProxy(Policy.build([f"127.0.0.1:{echo.port}"]),
                                                  tcp=True) as proxy:
        assert proxy.port is not None
        reply = await connect(proxy.port, f"127.0.0.1:{echo.port}")
        assert reply.status == 200
        await reply.stream.send(b"hello through the tunnel")
        assert await reply.stream.receive() == b"hello through the tunnel"
        await reply.stream.aclose()


async def test_a_host_outside_the_allowlist_is_refused_with_a_reason_and_an_event() -> None:
    seen, on_blocked = blocked_log()
    async with EgressProxy(Policy.build(["api.anthropic.com"]), tcp=True,
                           on_blocked=on_blocked) as proxy:
        assert proxy.port is not None
        reply = await connect(proxy.port, "exfiltrate.example.net:443")
        assert reply.status == 403
        assert b"exfiltrate.example.net:443" in reply.body
        assert b"not in the allowlist" in reply.body
        assert [(e.host, e.port, e.reason) for e in seen] == [
            ("exfiltrate.example.net", 443, "not in the allowlist")]
        # An allowed name on another port is refused too.
        reply = await connect(proxy.port, "api.anthropic.com:22")
        assert reply.status == 403
        assert len(seen) == 2


@pytest.mark.parametrize("target, reason", [
    ("169.254.169.254:80", "metadata"),
    ("[fd00:ec2::254]:80", "metadata"),
    ("10.1.2.3:443", "private"),
    ("192.168.1.1:443", "private"),
    ("172.17.0.1:2375", "private"),
    ("100.64.0.1:443", "CGNAT"),
    ("[fe80::1]:443", "link-local"),
    ("169.254.1.1:443", "link-local"),
    ("[fc00::1]:443", "private"),
    ("0.0.0.0:80", "unspecified"),
    ("224.0.0.1:80", "multicast"),
    ("127.0.0.1:22", "loopback"),
    ("[::1]:22", "loopback"),
    ("[::ffff:127.0.0.1]:22", "loopback"),
    ("[::ffff:10.0.0.1]:443", "private"),
    ("[64:ff9b::a9fe:a9fe]:80", "metadata"),
])
async def test_addresses_of_this_machine_and_its_networks_are_refused_without_asking(
        target: str, reason: str) -> None:
    asked: list[tuple[str, int]] = []

    async def ask(host: str, port: int) -> str:
        asked.append((host, port))
        return "job"

    seen, on_blocked = blocked_log()
    async with EgressProxy(Policy.build([]), tcp=True, ask=ask, on_blocked=on_blocked) as proxy:
        assert proxy.port is not None
        reply = await connect(proxy.port, target)
    assert reply.status == 403
    assert reason in reply.body.decode()
    assert asked == []
    assert len(seen) == 1 and reason in seen[0].reason


async def test_a_name_that_resolves_to_loopback_is_refused_even_when_allowed() -> None:
    async with echo_server() as echo:
        seen, on_blocked = blocked_log()
        policy = Policy.build([f"localhost:{echo.port}"])
        async with EgressProxy(policy, tcp=True, on_blocked=on_blocked) as proxy:
            assert proxy.port is not None
            reply = await connect(proxy.port, f"localhost:{echo.port}")
        assert reply.status == 403
        assert "localhost resolves to a loopback address" in reply.body.decode()
        assert seen[0].host == "localhost"
        assert echo.accepted == 0


async def test_an_explicit_loopback_entry_permits_exactly_that_address_and_port() -> None:
    async with echo_server() as echo:
        policy = Policy.build([f"127.0.0.1:{echo.port}"])
        async with EgressProxy(policy, tcp=True) as proxy:
            assert proxy.port is not None
            assert (await connect(proxy.port, f"127.0.0.1:{echo.port}")).status == 200
            other = (echo.port % 60000) + 1024
            assert (await connect(proxy.port, f"127.0.0.1:{other}")).status == 403
            assert (await connect(proxy.port, f"127.0.0.2:{echo.port}")).status == 403
            assert (await connect(proxy.port, f"[::1]:{echo.port}")).status == 403


async def test_plain_http_is_forwarded_to_an_allowed_host() -> None:
    with FakeAnthropic() as upstream:
        seen, on_blocked = blocked_log()
        policy = Policy.build([f"127.0.0.1:{upstream.port}"])
        async with EgressProxy(policy, tcp=True, on_blocked=on_blocked) as proxy:
            assert proxy.port is not None
            head = (f"GET http://127.0.0.1:{upstream.port}/v1/models?limit=1 HTTP/1.1\r\n"
                    f"Host: 127.0.0.1:{upstream.port}\r\nProxy-Connection: keep-alive\r\n"
                    "User-Agent: curl/8\r\n\r\n").encode()
            reply = await request(proxy.port, head)
            assert reply.status == 200
            body = b'{"messages": []}'
            post = (f"POST http://127.0.0.1:{upstream.port}/v1/messages/count_tokens HTTP/1.1\r\n"
                    f"Host: 127.0.0.1:{upstream.port}\r\nContent-Length: {len(body)}\r\n"
                    "Expect: 100-continue\r\n\r\n").encode()
            stream = await anyio.connect_tcp("127.0.0.1", proxy.port)
            await stream.send(post)
            assert (await stream.receive()).startswith(b"HTTP/1.1 100 ")
            posted_reply = await request(proxy.port, b"", body, stream=stream)
            assert posted_reply.status == 200 and b"input_tokens" in posted_reply.body
            refused = await request(proxy.port, b"GET http://example.org/ HTTP/1.1\r\n"
                                                b"Host: example.org\r\n\r\n")
            assert refused.status == 403
        got, posted = upstream.requests
        assert (posted.method, posted.path) == ("POST", "/v1/messages/count_tokens")
        assert posted.body == {"messages": []}
        assert (got.method, got.path) == ("GET", "/v1/models?limit=1")
        assert got.headers["host"] == f"127.0.0.1:{upstream.port}"
        assert got.headers["user-agent"] == "curl/8"
        assert "proxy-connection" not in got.headers
        assert [e.host for e in seen] == ["example.org"]


async def _ask_proxy(answer: str | None, delay: float = 0.0, bound: float = 5.0) -> tuple[
        list[int], list[tuple[str, int]], list[tuple[str, int]]]:
    """Two CONNECTs to localhost (not in the allowlist) under an `ask` hook; the statuses,
    what was asked, and what was to be saved."""
    asked: list[tuple[str, int]] = []
    saved: list[tuple[str, int]] = []

    async def ask(host: str, port: int) -> str:
        asked.append((host, port))
        await anyio.sleep(delay)
        if answer is None:
            await anyio.sleep(3600)
        return str(answer)

    statuses = []
    async with echo_server() as echo:
        # The address is permitted; the name is not: only the user's answer lets it through.
        policy = Policy.build([f"127.0.0.1:{echo.port}", f"[::1]:{echo.port}"])
        async with EgressProxy(policy, tcp=True, ask=ask, ask_timeout=bound,
                               on_always=lambda h, p: saved.append((h, p))) as proxy:
            assert proxy.port is not None
            for _ in range(2):
                reply = await connect(proxy.port, f"localhost:{echo.port}")
                statuses.append(reply.status)
                if reply.status == 200:
                    await reply.stream.send(b"x")
                    assert await reply.stream.receive() == b"x"
                await reply.stream.aclose()
        return statuses, [(h, p - echo.port) for h, p in asked], [
            (h, p - echo.port) for h, p in saved]


async def test_ask_allow_for_this_job_lets_the_waiting_connection_through_and_is_remembered() -> None:
    statuses, asked, saved = await _ask_proxy("job", delay=0.3)
    assert statuses == [200, 200]
    assert asked == [("localhost", 0)]
    assert saved == []


async def test_ask_always_allows_and_hands_the_answer_to_be_saved() -> None:
    statuses, asked, saved = await _ask_proxy("always")
    assert statuses == [200, 200]
    assert asked == [("localhost", 0)]
    assert saved == [("localhost", 0)]


async def test_ask_deny_refuses_and_is_not_asked_again() -> None:
    statuses, asked, saved = await _ask_proxy("deny")
    assert saved == []
    assert statuses == [403, 403]
    assert asked == [("localhost", 0)]


async def test_an_unanswered_ask_refuses_after_its_bound_and_asks_again_later() -> None:
    started = time.monotonic()
    statuses, asked, _ = await _ask_proxy(None, bound=0.3)
    assert statuses == [403, 403]
    assert len(asked) == 2
    assert time.monotonic() - started < 5


async def test_concurrent_connections_to_the_same_host_share_one_question() -> None:
    asked: list[str] = []
    gate = anyio.Event()

    async def ask(host: str, port: int) -> str:
        asked.append(host)
        await gate.wait()
        return "job"

    async with echo_server() as echo:
        policy = Policy.build([f"127.0.0.1:{echo.port}", f"[::1]:{echo.port}"])
        async with EgressProxy(policy, tcp=True, ask=ask) as proxy:
            assert proxy.port is not None
            port = proxy.port
            statuses: list[int] = []

            async def one() -> None:
                reply = await connect(port, f"localhost:{echo.port}")
                statuses.append(reply.status)
                await reply.stream.aclose()

            async with anyio.create_task_group() as group:
                for _ in range(5):
                    group.start_soon(one)
                await anyio.sleep(0.3)
                gate.set()
    assert statuses == [200] * 5
    assert asked == ["localhost"]


async def test_an_oversized_request_header_is_answered_431() -> None:
    async with EgressProxy(Policy.build([]), tcp=True,
                           limits=Limits(header_bytes=8192)) as proxy:
        assert proxy.port is not None
        head = (b"GET http://example.org/ HTTP/1.1\r\nHost: example.org\r\nX-Big: "
                + b"a" * 20000 + b"\r\n\r\n")
        reply = await request(proxy.port, head)
        assert reply.status == 431
        # A header that never ends is cut off at the bound too.
        reply = await request(proxy.port, head[:-4])
        assert reply.status == 431


async def test_garbage_is_answered_400_and_an_idle_client_is_dropped() -> None:
    async with EgressProxy(Policy.build([]), tcp=True,
                           limits=Limits(idle_seconds=0.3)) as proxy:
        assert proxy.port is not None
        reply = await request(proxy.port, b"\x16\x03\x01 not http\r\n\r\n")
        assert reply.status == 400
        stream = await anyio.connect_tcp("127.0.0.1", proxy.port)
        started = time.monotonic()
        with anyio.fail_after(5), pytest.raises((anyio.EndOfStream, anyio.BrokenResourceError)):
            await stream.receive()
        assert time.monotonic() - started < 3
        await stream.aclose()


async def test_many_concurrent_tunnels() -> None:
    done: list[int] = []
    async with echo_server() as echo, EgressProxy(Policy.build([f"127.0.0.1:{echo.port}"]),
                                                  tcp=True) as proxy:
        assert proxy.port is not None
        port = proxy.port

        async def one(index: int) -> None:
            reply = await connect(port, f"127.0.0.1:{echo.port}")
            payload = f"tunnel {index}".encode()
            await reply.stream.send(payload)
            assert await reply.stream.receive() == payload
            await reply.stream.aclose()
            done.append(index)

        async with anyio.create_task_group() as group:
            for index in range(200):
                group.start_soon(one, index)
    assert sorted(done) == list(range(200))


async def test_it_serves_on_a_unix_socket_that_a_new_proxy_can_take_over(tmp_path: Path) -> None:
    path = tmp_path / "egress.sock"
    async with echo_server() as echo:
        for _ in range(2):
            async with EgressProxy(Policy.build([f"127.0.0.1:{echo.port}"]),
                                   socket_path=path) as proxy:
                assert proxy.port is None
                assert oct(path.stat().st_mode & 0o777) == "0o600"
                stream = await anyio.connect_unix(path)
                target = f"127.0.0.1:{echo.port}"
                await stream.send(f"CONNECT {target} HTTP/1.1\r\nHost: {target}\r\n\r\n".encode())
                assert (await stream.receive()).startswith(b"HTTP/1.1 200")
                await stream.send(b"ping")
                assert await stream.receive() == b"ping"
                await stream.aclose()
            assert not path.exists()
        # A successor may take the path over while its predecessor still runs; the
        # predecessor's end leaves the successor's socket in place.
        started, stop, ended = anyio.Event(), anyio.Event(), anyio.Event()

        async def predecessor() -> None:
            async with EgressProxy(Policy.build([]), socket_path=path):
                started.set()
                await stop.wait()
            ended.set()

        async with anyio.create_task_group() as group:
            group.start_soon(predecessor)
            await started.wait()
            async with EgressProxy(Policy.build([f"127.0.0.1:{echo.port}"]), socket_path=path):
                stop.set()
                await ended.wait()
                assert path.exists()
                stream = await anyio.connect_unix(path)
                target = f"127.0.0.1:{echo.port}"
                await stream.send(f"CONNECT {target} HTTP/1.1\r\nHost: {target}\r\n\r\n"
                                  .encode())
                assert (await stream.receive()).startswith(b"HTTP/1.1 200")
                await stream.aclose()


async def test_a_tunnel_busy_one_way_is_not_idle_and_a_silent_one_is_closed() -> None:
    async def ticker(stream: anyio.abc.SocketStream) -> None:
        async with stream:
            for _ in range(8):
                await stream.send(b"t")
                await anyio.sleep(0.15)

    listener = await anyio.create_tcp_listener(local_host="127.0.0.1", local_port=0)
    port = int(listener.extra(anyio.abc.SocketAttribute.local_port))
    async with anyio.create_task_group() as group:
        group.start_soon(listener.serve, ticker)
        async with EgressProxy(Policy.build([f"127.0.0.1:{port}"]), tcp=True,
                               limits=Limits(idle_seconds=0.5)) as proxy:
            assert proxy.port is not None
            reply = await connect(proxy.port, f"127.0.0.1:{port}")
            received = b""
            with anyio.fail_after(5):
                while len(received) < 8:
                    received += await reply.stream.receive()
            assert received == b"t" * 8  # 1.2 s of download, nothing sent: still open
            # The ticker is done; with nothing moving either way, the proxy ends the tunnel.
            with anyio.fail_after(5), pytest.raises((anyio.EndOfStream,
                                                     anyio.BrokenResourceError)):
                await reply.stream.receive()
            await reply.stream.aclose()
        group.cancel_scope.cancel()


async def test_the_api_upstreams_host_and_port_are_always_allowed() -> None:
    async with echo_server() as echo, EgressProxy(
            Policy.build([]), tcp=True, upstream=f"http://127.0.0.1:{echo.port}") as proxy:
        assert proxy.port is not None
        assert (await connect(proxy.port, f"127.0.0.1:{echo.port}")).status == 200
        assert proxy.policy.allows("127.0.0.1", echo.port)
    assert Policy.build([]).allows("api.anthropic.com", 443) is False
    async with EgressProxy(Policy.build([]), tcp=True) as proxy:
        assert proxy.policy.allows("api.anthropic.com", 443)
        assert not proxy.policy.allows("api.anthropic.com", 80)


def test_synchronous_code_runs_the_proxy_in_a_thread_of_its_own(tmp_path: Path) -> None:
    import socket

    path = tmp_path / "egress.sock"
    seen, on_blocked = blocked_log()
    proxy = EgressProxy(Policy.build([]), socket_path=path, on_blocked=on_blocked)
    with ProxyThread.start(proxy), socket.socket(socket.AF_UNIX) as client:
        client.settimeout(10)
        client.connect(str(path))
        client.sendall(b"CONNECT example.net:443 HTTP/1.1\r\nHost: example.net\r\n\r\n")
        assert client.recv(100).startswith(b"HTTP/1.1 403")
    assert not path.exists()
    assert [e.host for e in seen] == ["example.net"]


async def test_a_socket_deep_in_a_long_state_dir_is_served(tmp_path: Path) -> None:
    """bind() takes at most 107 bytes of path; a deep XDG_STATE_HOME is longer than that."""
    deep = tmp_path / ("state-" + "d" * 100) / "egress"
    deep.mkdir(parents=True)
    async with echo_server() as echo, EgressProxy(Policy.build([f"127.0.0.1:{echo.port}"]),
                                                  socket_path=deep / "egress.sock"):
        assert (deep / "egress.sock").is_socket()
        (tmp_path / "s").symlink_to(deep)  # as the sandbox's short mount point would be
        stream = await anyio.connect_unix(tmp_path / "s" / "egress.sock")
        target = f"127.0.0.1:{echo.port}"
        await stream.send(f"CONNECT {target} HTTP/1.1\r\nHost: {target}\r\n\r\n".encode())
        assert (await stream.receive()).startswith(b"HTTP/1.1 200")
        await stream.send(b"through a long path")
        assert await stream.receive() == b"through a long path"
        await stream.aclose()
    assert not (deep / "egress.sock").exists()
