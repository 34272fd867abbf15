"""What the egress proxy adds to a Messages API call. Prints a table; writes bench/results/egress.json.

    .venv/bin/python bench/egress.py [--runs 200]

A keep-alive HTTP/1.1 client (as the CLI is) calls the scripted model (a) directly and (b) through
the proxy's API route — over its Unix socket, over TCP, and the way the sandbox does: through
the Node forwarder (`forward.js`, run here on the host) to the socket — with the placeholder key
put in place by the real one. Measured, interleaved, medians:
- the round trip of a non-streaming `POST /v1/messages`;
- time to first token of a streaming one (the first `content_block_delta` read by the client),
  and to its last byte (small writes held back, e.g. by Nagle, show there).
Target: <= 5 ms added to each.
"""

from __future__ import annotations

import argparse
import http.client
import json
import socket
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "server"))
RESULTS = ROOT / "bench" / "results"
TARGET_S = 0.005


class UnixConnection(http.client.HTTPConnection):
    def __init__(self, path: str) -> None:
        super().__init__("127.0.0.1")
        self.path = path

    def connect(self) -> None:
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        self.sock.connect(self.path)


def _body(stream: bool) -> bytes:
    return json.dumps({"model": "claude-scripted", "max_tokens": 64, "stream": stream,
                       "tools": [{"name": "Bash", "input_schema": {}}],
                       "messages": [{"role": "user", "content": "x" * 2000}]}).encode()


def round_trip(conn: http.client.HTTPConnection, key: str) -> float:
    body = _body(False)
    started = time.perf_counter()
    conn.request("POST", "/v1/messages", body=body, headers={
        "x-api-key": key, "content-type": "application/json", "anthropic-version": "2023-06-01"})
    response = conn.getresponse()
    response.read()
    elapsed = time.perf_counter() - started
    assert response.status == 200, response.status
    return elapsed


def first_token(conn: http.client.HTTPConnection, key: str) -> tuple[float, float]:
    body = _body(True)
    started = time.perf_counter()
    conn.request("POST", "/v1/messages", body=body, headers={
        "x-api-key": key, "content-type": "application/json"})
    response = conn.getresponse()
    seen = b""
    elapsed = 0.0
    while True:
        line = response.readline()
        if not line:
            break
        if not elapsed and b"content_block_delta" in line:
            elapsed = time.perf_counter() - started
        seen += line
    assert response.status == 200 and elapsed, response.status
    return elapsed, time.perf_counter() - started


def measure(runs: int, connections: dict[str, Callable[[], http.client.HTTPConnection]],
            keys: dict[str, str]) -> dict[str, dict[str, list[float]]]:
    out: dict[str, dict[str, list[float]]] = {name: {"rt": [], "ttft": [], "last": []}
                                              for name in connections}
    open_ = {name: make() for name, make in connections.items()}
    for _ in range(10):  # warm up: connections, caches
        for name, conn in open_.items():
            round_trip(conn, keys[name])
    for _ in range(runs):
        for name, conn in open_.items():
            out[name]["rt"].append(round_trip(conn, keys[name]))
            first, last = first_token(conn, keys[name])
            out[name]["ttft"].append(first)
            out[name]["last"].append(last)
    for conn in open_.values():
        conn.close()
    return out


def main() -> int:
    from anyio.from_thread import start_blocking_portal

    from channelcoder.egress import Credentials, EgressProxy, Policy
    from channelcoder.egress.credentials import API_KEY_PLACEHOLDER
    from channelcoder.testing.fake_anthropic import FakeAnthropic, Reply, Turn
    from channelcoder.testing.forwarder import run_forwarder

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=200)
    args = parser.parse_args()
    real_key = "sk-ant-api03-bench-real-key-0123456789"
    turn = Turn([Reply("a few words of a reply")], chunks=4)
    with tempfile.TemporaryDirectory(prefix="cc-bench-egress-") as tmp, \
            FakeAnthropic([turn] * 10) as model, start_blocking_portal() as portal:
        socket_path = str(Path(tmp) / "egress.sock")
        proxy = EgressProxy(Policy.build([]), Credentials(api_key=real_key),
                            socket_path=socket_path, tcp=True, upstream=model.url)
        with portal.wrap_async_context_manager(proxy), run_forwarder(socket_path) as forwarded:
            port = proxy.port
            assert port is not None
            timings = measure(args.runs, {
                "direct": lambda: http.client.HTTPConnection("127.0.0.1", model.port),
                "proxy (unix socket)": lambda: UnixConnection(socket_path),
                "proxy (tcp)": lambda: http.client.HTTPConnection("127.0.0.1", port),
                "forwarder + proxy": lambda: http.client.HTTPConnection("127.0.0.1", forwarded),
            }, {"direct": real_key, "proxy (unix socket)": API_KEY_PLACEHOLDER,
                "proxy (tcp)": API_KEY_PLACEHOLDER, "forwarder + proxy": API_KEY_PLACEHOLDER})
        assert all(r.headers.get("x-api-key") == real_key for r in model.requests)
    med = statistics.median
    direct = timings["direct"]
    results: dict[str, Any] = {"runs": args.runs, "target": "<= 5 ms added (median)"}
    print(f"egress proxy, API route ({args.runs} runs each, medians)")
    print(f"  {'path':<22} {'round trip':>12} {'added':>9} {'first token':>12} {'added':>9} "
          f"{'last byte':>12} {'added':>9}")
    met = True
    for name, values in timings.items():
        rt, ttft, last = med(values["rt"]), med(values["ttft"]), med(values["last"])
        added_rt, added_ttft = rt - med(direct["rt"]), ttft - med(direct["ttft"])
        added_last = last - med(direct["last"])
        key = {"proxy (unix socket)": "proxy_unix_socket", "proxy (tcp)": "proxy_tcp",
               "forwarder + proxy": "forwarder_and_proxy"}.get(name, name)
        results[key] = {"round_trip_median_s": round(rt, 5), "ttft_median_s": round(ttft, 5),
                        "last_byte_median_s": round(last, 5),
                        "added_round_trip_s": round(added_rt, 5),
                        "added_ttft_s": round(added_ttft, 5),
                        "added_last_byte_s": round(added_last, 5)}
        if name != "direct":
            met = met and max(added_rt, added_ttft, added_last) <= TARGET_S
        print(f"  {name:<22} {rt * 1000:9.2f} ms {added_rt * 1000:6.2f} ms "
              f"{ttft * 1000:9.2f} ms {added_ttft * 1000:6.2f} ms "
              f"{last * 1000:9.2f} ms {added_last * 1000:6.2f} ms")
    results["met"] = met
    print(f"  target: {results['target']} — {'met' if met else 'NOT met'}")
    RESULTS.mkdir(parents=True, exist_ok=True)
    (RESULTS / "egress.json").write_text(json.dumps(results, indent=2) + "\n")
    return 0 if met else 1


if __name__ == "__main__":
    sys.exit(main())
