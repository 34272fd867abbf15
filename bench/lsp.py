"""Benchmarks for the language server over stdio with a real client. Prints a table; writes
bench/results/lsp.json.

    .venv/bin/python bench/lsp.py [--requests 2000] [--deltas 5000] [--no-docker] [--skip-jobs]

Measured here (real server process, real Claude CLI, the scripted model):
- `textDocument/codeAction` round-trip latency p50/p99 over N requests on a 5,000-line
  document with 50 diagnostics in the context (target p99 <= 5 ms);
- time from `workspace/executeCommand` to the first `$/progress` report and to the first
  model text (`channelcoder/event` text-delta) of a scripted job; the first report must not wait
  for the sandbox;
- wall time of the same scripted job from `executeCommand` to the applied proposal, and (when
  a Docker engine answers, unless --no-docker) the same against a raw `docker run … claude -p …`
  of the same image (the bundled one unless --image): without a standby (target <= 1.1x) and
  with a ready standby sandbox (target <= 0.25x; each run first waits, untimed, until the
  server has a standby ready plus one second, and the runs the standby served are counted);
- progress notifications per second while a job streams N text deltas (target <= 10/s), and
  that every delta arrives on `channelcoder/event` (none lost);
- the server's RSS idle and with 5 concurrent jobs.
"""

from __future__ import annotations

import argparse
import itertools
import json
import os
import queue
import shutil
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "server"))
RESULTS = ROOT / "bench" / "results"
PINNED = ROOT / ".cache/claude-code" / (
    ROOT / "server/channelcoder/sandbox/image/claude-code.version").read_text().strip() / \
    "node_modules/.bin/claude"

from channelcoder.testing.fake_anthropic import (  # noqa: E402
    FakeAnthropic,
    Reply,
    Scenario,
    ToolCall,
    Turn,
    split_text,
)
from channelcoder.testing.network import bridge_gateway  # noqa: E402

NATIVE = {"docker": False, "tools": ["Read", "Edit", "Bash"]}


class Client:
    """A small synchronous LSP client over a real `channelcoder lsp` process."""

    def __init__(self, env: dict[str, str]) -> None:
        self.process = subprocess.Popen(
            [sys.executable, "-m", "channelcoder", "lsp"], stdin=subprocess.PIPE,
            stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, env={**os.environ, **env})
        self.ids = itertools.count(1)
        self.responses: dict[Any, queue.Queue[dict[str, Any]]] = {}
        self.notes: list[tuple[float, dict[str, Any]]] = []
        self.applied: list[float] = []
        self.lock = threading.Lock()
        self.changed = threading.Condition(self.lock)
        threading.Thread(target=self._read, daemon=True).start()

    def _read(self) -> None:
        out = self.process.stdout
        assert out is not None
        while True:
            length = 0
            while True:
                line = out.readline()
                if not line:
                    return
                if line == b"\r\n":
                    break
                if line.lower().startswith(b"content-length:"):
                    length = int(line.split(b":")[1])
            message = json.loads(out.read(length))
            now = time.perf_counter()
            if "id" in message and "method" in message:
                self._answer(message, now)
            elif "method" in message:
                with self.changed:
                    self.notes.append((now, message))
                    self.changed.notify_all()
            else:
                self.responses.setdefault(message["id"], queue.Queue()).put(message)

    def _answer(self, request: dict[str, Any], now: float) -> None:
        result: Any = None
        if request["method"] == "workspace/applyEdit":
            with self.changed:
                self.applied.append(now)
                self.changed.notify_all()
            result = {"applied": True}
        elif request["method"] == "workspace/configuration":
            result = [None]
        elif request["method"] == "window/showDocument":
            result = {"success": True}
        self.send({"jsonrpc": "2.0", "id": request["id"], "result": result})

    def send(self, message: dict[str, Any]) -> None:
        body = json.dumps(message).encode()
        assert self.process.stdin is not None
        self.process.stdin.write(b"Content-Length: %d\r\n\r\n%s" % (len(body), body))
        self.process.stdin.flush()

    def request(self, method: str, params: Any, timeout: float = 300) -> Any:
        msg_id = next(self.ids)
        box = self.responses.setdefault(msg_id, queue.Queue())
        self.send({"jsonrpc": "2.0", "id": msg_id, "method": method, "params": params})
        reply = box.get(timeout=timeout)
        del self.responses[msg_id]
        if "error" in reply:
            raise RuntimeError(f"{method}: {reply['error']}")
        return reply.get("result")

    def notify(self, method: str, params: Any) -> None:
        self.send({"jsonrpc": "2.0", "method": method, "params": params})

    def start(self, root: Path, init: dict[str, Any]) -> None:
        self.request("initialize", {
            "processId": os.getpid(), "rootUri": root.as_uri(),
            "capabilities": {"window": {"workDoneProgress": True},
                             "workspace": {"workspaceEdit": {
                                 "documentChanges": True,
                                 "resourceOperations": ["create", "rename", "delete"],
                                 "changeAnnotationSupport": {}}}},
            "initializationOptions": init})
        self.notify("initialized", {})

    def rss_mb(self) -> float:
        for line in Path(f"/proc/{self.process.pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
        return 0.0

    def close(self) -> None:
        try:
            self.request("shutdown", None, timeout=30)
            self.notify("exit", None)
            self.process.wait(30)
        except Exception:
            self.process.kill()


def percentile(values: list[float], share: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(share * len(ordered)))]


def make_repo(base: Path) -> Path:
    repo = base / "repo"
    repo.mkdir()
    (repo / "big.py").write_text("".join(f"value_{i} = {i}  # line {i}\n" for i in range(5000)))
    (repo / "app.py").write_text("GREETING = 'hello'\n")
    for args in (["init", "-q", "-b", "main"], ["add", "-A"],
                 ["-c", "user.email=b@example.com", "-c", "user.name=bench", "commit", "-qm",
                  "init"]):
        subprocess.run(["git", *args], cwd=repo, check=True, capture_output=True)
    return repo


def code_actions(repo: Path, count: int) -> dict[str, Any]:
    client = Client({})
    try:
        client.start(repo, NATIVE)
        uri = (repo / "big.py").as_uri()
        text = (repo / "big.py").read_text()
        client.notify("textDocument/didOpen", {"textDocument": {
            "uri": uri, "languageId": "python", "version": 1, "text": text}})
        diagnostics = [{"range": {"start": {"line": 100 * i, "character": 0},
                                  "end": {"line": 100 * i, "character": 9}},
                        "message": f"problem number {i}", "severity": 2, "source": "bench"}
                       for i in range(50)]
        params = {"textDocument": {"uri": uri},
                  "range": {"start": {"line": 0, "character": 0},
                            "end": {"line": 4999, "character": 5}},
                  "context": {"diagnostics": diagnostics}}
        for _ in range(50):  # warm-up
            client.request("textDocument/codeAction", params)
        times: list[float] = []
        actions = 0
        for _ in range(count):
            start = time.perf_counter()
            actions = len(client.request("textDocument/codeAction", params))
            times.append((time.perf_counter() - start) * 1000)
        server = in_process(params, count)
        return {"requests": count, "actions_per_reply": actions, "lines": 5000,
                "diagnostics": 50, "p50_ms": round(percentile(times, 0.5), 3),
                "p99_ms": round(percentile(times, 0.99), 3),
                "max_ms": round(max(times), 3), "target_p99_ms": 5.0,
                "server_side_p50_ms": round(percentile(server, 0.5), 3),
                "server_side_p99_ms": round(percentile(server, 0.99), 3)}
    finally:
        client.close()


def in_process(params: dict[str, Any], count: int) -> list[float]:
    """The server's own share of a request: parse params, build actions, serialize the reply."""
    from lsprotocol import types
    from pygls.protocol import default_converter

    from channelcoder.lsp.actions import PromptCatalog, code_actions

    converter = default_converter()
    catalog = PromptCatalog()
    times: list[float] = []
    for _ in range(count):
        start = time.perf_counter()
        parsed = converter.structure(params, types.CodeActionParams)
        json.dumps(converter.unstructure(code_actions(parsed, catalog)))
        times.append((time.perf_counter() - start) * 1000)
    return times


def first_report_and_text(repo: Path, init: dict[str, Any], runs: int) -> dict[str, Any]:
    firsts: list[float] = []
    texts: list[float] = []
    begins: list[float] = []
    with FakeAnthropic(Scenario([Turn([Reply("The first words of the answer.")], chunks=4)])) \
            as api:
        client = Client(api.env())
        try:
            client.start(repo, {**init, "streamEvents": True, "apply": "direct"})
            for n in range(runs):
                mark = len(client.notes)
                start = time.perf_counter()
                client.request("workspace/executeCommand", {
                    "command": "channelcoder.run", "arguments": [{"prompt": f"say {n}"}]})
                notes = client.notes[mark:]
                begin = next(t for t, m in notes if m["method"] == "$/progress"
                             and m["params"]["value"]["kind"] == "begin")
                report = next(t for t, m in notes if m["method"] == "$/progress"
                              and m["params"]["value"]["kind"] == "report")
                text = next(t for t, m in notes if m["method"] == "channelcoder/event"
                            and m["params"]["event"]["type"] == "text-delta")
                begins.append((begin - start) * 1000)
                firsts.append((report - start) * 1000)
                texts.append((text - start) * 1000)
        finally:
            client.close()
    return {"runs": runs, "to_begin_ms": round(statistics.median(begins), 1),
            "to_first_report_ms": round(statistics.median(firsts), 1),
            "to_first_text_ms": round(statistics.median(texts), 1)}


def job_to_applied(repo: Path, init: dict[str, Any], runs: int, *,
                   standby: bool = False) -> float:
    """Median seconds from executeCommand to the client having applied the proposal.

    With `standby`, each run first waits (untimed) for the server's standby to be ready.
    """
    return job_runs(repo, init, runs, standby=standby)["median_s"]


def job_runs(repo: Path, init: dict[str, Any], runs: int, *, standby: bool) -> dict[str, Any]:
    times: list[float] = []
    served = 0
    used: set[str] = set()
    kind = "standby" if standby else "cold"  # a job id names its proposal's session: one each
    scenario = Scenario([ToolCall("Bash", {"command": "sed -i s/hello/hi/ app.py"}),
                         Reply("Changed.")])
    with FakeAnthropic(scenario) as api:
        client = Client({**api.env(), "CHANNELCODER_DOCKER_LABELS": BENCH_LABEL})
        try:
            client.start(repo, {**init, "apply": "propose", "standby": standby,
                                "streamEvents": True})
            for n in range(runs):
                if standby:  # ready and settled, as between two requests of a user
                    used.add(wait_standby(used))
                    time.sleep(STANDBY_SETTLE)
                mark, notes = len(client.applied), len(client.notes)
                start = time.perf_counter()
                reply = client.request("workspace/executeCommand", {
                    "command": "channelcoder.run", "arguments": [{"prompt": "shorten",
                                                                  "jobId": f"{kind}{n}"}]})
                with client.changed:
                    client.changed.wait_for(lambda m=mark: len(client.applied) > m, timeout=60)
                times.append(client.applied[mark] - start)
                served += any(m["method"] == "channelcoder/event"
                              and m["params"]["jobId"] == reply["jobId"]
                              and "standby" in (m["params"]["event"].get("message") or "")
                              for _, m in client.notes[notes:])
                subprocess.run(["git", "checkout", "-q", "app.py"], cwd=repo, check=True)
        finally:
            client.close()
    return {"median_s": statistics.median(times), "runs_s": [round(t, 3) for t in times],
            "served_by_standby": served}


BENCH_LABEL = "io.channelcoder.bench=lsp"


STANDBY_SETTLE = 1.0  # claude keeps starting things for a moment after it answers the ping


def wait_standby(used: set[str], limit: float = 180.0) -> str:
    """The id of a ready standby container of this benchmark not used before."""
    import docker

    client = docker.from_env()
    deadline = time.monotonic() + limit
    while time.monotonic() < deadline:
        for container in client.api.containers(filters={"label": [
                BENCH_LABEL, "io.channelcoder.standby=1"]}):
            warm = Path(container["Labels"].get("io.channelcoder.warm", "/nonexistent"))
            try:
                meta = json.loads((warm / "meta.json").read_text())
            except (OSError, ValueError):
                continue
            if meta.get("ready") and meta.get("standby") and container["Id"] not in used:
                return str(container["Id"])
        time.sleep(0.05)
    raise RuntimeError("no standby sandbox became ready")


def raw_docker_run(repo: Path, image: str, runs: int, network: str) -> float:
    """A bare `docker run` of the same job: on Docker's default network (the bridge; the
    scripted model on the bridge's host address), or the host's when channelcoder uses it."""
    times: list[float] = []
    scenario = Scenario([ToolCall("Bash", {"command": "sed -i s/hello/hi/ app.py"}),
                         Reply("Changed.")])
    raw_network = "host" if network == "host" else "bridge"
    with FakeAnthropic(scenario, host="127.0.0.1" if network == "host" else bridge_gateway()
                       ) as api:
        env = api.env()
        for _ in range(runs):
            start = time.perf_counter()
            subprocess.run(
                ["docker", "run", "--rm", "--network", raw_network, "-v", f"{repo}:/workspace",
                 "-w", "/workspace", "-e", f"ANTHROPIC_BASE_URL={env['ANTHROPIC_BASE_URL']}",
                 "-e", f"ANTHROPIC_API_KEY={env['ANTHROPIC_API_KEY']}", "-e", "IS_SANDBOX=1",
                 image, "claude", "-p", "--output-format", "stream-json", "--verbose",
                 "--permission-mode", "bypassPermissions", "--", "shorten"],
                check=True, capture_output=True)
            times.append(time.perf_counter() - start)
            subprocess.run(["git", "checkout", "-q", "app.py"], cwd=repo, check=True)
    return statistics.median(times)


def streaming(repo: Path, deltas: int) -> dict[str, Any]:
    text = "".join(f"w{i:05d} " for i in range(deltas))  # equal words: one per SSE delta
    turn = Turn([Reply(text)], chunks=deltas, delay=0.0005)
    with FakeAnthropic(Scenario([turn])) as api:
        client = Client(api.env())
        try:
            client.start(repo, {**NATIVE, "apply": "direct", "streamEvents": True})
            mark = len(client.notes)
            reply = client.request("workspace/executeCommand", {
                "command": "channelcoder.run", "arguments": [{"prompt": "stream", "jobId": "s"}]})
            notes = client.notes[mark:]
        finally:
            client.close()
    events = [m["params"]["event"] for _, m in notes if m["method"] == "channelcoder/event"]
    got = [e["text"] for e in events if e["type"] == "text-delta"]
    delta_times = [t for t, m in notes if m["method"] == "channelcoder/event"
                   and m["params"]["event"]["type"] == "text-delta"]
    reports = [t for t, m in notes if m["method"] == "$/progress"
               and m["params"]["value"]["kind"] == "report"]
    span = (delta_times[-1] - delta_times[0]) if len(delta_times) > 1 else 0.0
    in_span = [t for t in reports if delta_times[0] <= t <= delta_times[-1]]
    worst = 0
    for t in in_span:  # the most reports in any one-second window
        worst = max(worst, sum(1 for u in in_span if t <= u < t + 1.0))
    sent = len(split_text(text, deltas))
    return {"deltas_sent": sent, "deltas_received": len(got), "text_intact": "".join(got) == text
            and reply["text"] == text, "stream_seconds": round(span, 2),
            "reports_during_stream": len(in_span),
            "reports_per_second": round(len(in_span) / span, 2) if span else None,
            "max_reports_in_any_second": worst, "target_per_second": 10}


def rss(repo: Path, init: dict[str, Any]) -> dict[str, Any]:
    scenario = Scenario([ToolCall("Bash", {"command": "echo working"}),
                         Turn([Reply("done")], first_delay=2.0)])
    with FakeAnthropic(scenario) as api:
        client = Client(api.env())
        try:
            client.start(repo, {**init, "apply": "direct", "maxJobs": 5})
            time.sleep(1.0)
            idle = client.rss_mb()
            threads = [threading.Thread(target=client.request, args=(
                "workspace/executeCommand",
                {"command": "channelcoder.run", "arguments": [{"prompt": f"job {n}"}]}))
                for n in range(5)]
            for thread in threads:
                thread.start()
            peak = idle
            while any(t.is_alive() for t in threads):
                peak = max(peak, client.rss_mb())
                time.sleep(0.05)
        finally:
            client.close()
    return {"idle_mb": round(idle, 1), "five_jobs_peak_mb": round(peak, 1)}


def bundled_image(workspace: Path) -> str | None:
    """The sandbox image a job in `workspace` (no Dockerfile: the bundled one) runs, built when
    missing; None without an engine."""
    import anyio

    from channelcoder.config import DockerOptions
    from channelcoder.errors import DockerUnavailable
    from channelcoder.sandbox.image.resolve import ResolvedImage
    from channelcoder.sandbox.manager import SandboxManager

    async def resolve() -> str | None:
        async for item in SandboxManager().resolve_image(DockerOptions(), workspace):
            if isinstance(item, ResolvedImage):
                return item.ref
        return None

    try:
        return anyio.run(resolve)
    except DockerUnavailable as exc:
        print(f"no sandbox jobs: {exc}", file=sys.stderr)
        return None


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--requests", type=int, default=2000)
    parser.add_argument("--deltas", type=int, default=5000)
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--no-docker", dest="docker", action="store_false",
                        help="skip the sandbox jobs (they run when a Docker engine answers)")
    parser.add_argument("--image", help="the sandbox image (default: the bundled one)")
    parser.add_argument("--skip-jobs", action="store_true")
    parser.add_argument("--network", choices=["proxy", "host"], default="proxy",
                        help="the jobs' network mode (default: proxy, channelcoder's default); "
                             "the bare docker run uses Docker's default network, or the host's "
                             "with --network host")
    args = parser.parse_args()
    os.environ.setdefault("CHANNELCODER_CLAUDE", str(PINNED))
    os.environ["CLAUDE_CODE_MAX_RETRIES"] = "0"
    state = Path(tempfile.mkdtemp(prefix="cc-bench-lsp-"))
    os.environ["CHANNELCODER_STATE_DIR"] = str(state / "state")
    os.environ["CHANNELCODER_CACHE_DIR"] = str(state / "cache")
    results: dict[str, Any] = {}
    try:
        repo = make_repo(state)
        results["code_actions"] = code_actions(repo, args.requests)
        if not args.skip_jobs:
            results["first_report_native"] = first_report_and_text(repo, NATIVE, args.runs)
            results["to_applied_native_s"] = round(job_to_applied(repo, NATIVE, args.runs), 3)
            results["streaming"] = streaming(repo, args.deltas)
            results["rss_native"] = rss(repo, NATIVE)
            image = (args.image or bundled_image(repo)) if args.docker else None
            if image is not None:
                docker = {"image": image, "network": args.network}
                sandbox = {"docker": docker, "standby": False}
                results["first_report_docker"] = first_report_and_text(repo, sandbox, args.runs)
                lsp_time = job_to_applied(repo, sandbox, args.runs)
                results["to_applied_docker_s"] = round(lsp_time, 3)
                warm = job_runs(repo, {"docker": docker}, args.runs,
                                standby=True)
                results["to_applied_standby_s"] = round(warm["median_s"], 3)
                results["standby_runs_s"] = warm["runs_s"]
                results["standby_served"] = f"{warm['served_by_standby']}/{args.runs}"
                raw = raw_docker_run(repo, image, args.runs, args.network)
                results["network"] = args.network
                results["raw_docker_run_s"] = round(raw, 3)
                results["no_standby_ratio"] = round(lsp_time / raw, 3)
                results["no_standby_target"] = 1.1
                results["standby_ratio"] = round(warm["median_s"] / raw, 3)
                results["standby_target"] = 0.25
                results["rss_docker"] = rss(repo, sandbox)
    finally:
        shutil.rmtree(state, ignore_errors=True)
    RESULTS.mkdir(parents=True, exist_ok=True)
    (RESULTS / "lsp.json").write_text(json.dumps(results, indent=2) + "\n")
    width = max(len(k) for section in results.values() if isinstance(section, dict)
                for k in section) + 2
    for name, value in results.items():
        if isinstance(value, dict):
            print(name)
            for key, item in value.items():
                print(f"  {key:<{width}} {item}")
        else:
            print(f"{name:<{width + 2}} {value}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
