"""Benchmarks for the sandbox manager. Prints a table; writes bench/results/sandbox.json.

    .venv/bin/python bench/sandbox.py [--runs 7] [--resolutions 30]

Measured here (issue 3):
(a) resolving the sandbox image on a cache hit (in-process, engine connected, claude probe
    remembered) vs `docker build` of the same unchanged context (every layer cached).
    Target: <= 50 ms and >= 10x faster.
(b) the same scripted two-turn job (a Bash tool call, then text) via the installed
    `channelcoder run --docker-image IMG` vs the raw `docker run ... IMG claude -p ...` a user
    would type, interleaved, medians and their ratio, in a git repository (so channelcoder's
    run includes filling the job's git mirror and the check after it; the raw run mounts the
    repository, .git included). channelcoder runs in its default network mode, `proxy` (no
    network but its egress proxy, which carries the model's traffic), against a bare run on
    Docker's default network (the bridge; the scripted model listens on the bridge's host
    address) — a network namespace of its own costs each container ~0.1 s to start, which a
    `--network host` run skips; with `--network host` both run on the host's network.
    Target for a cold run: <= 1.10. Warm:
    the same job repeated in the same workspace as a named session (`--session`, a new CLI
    process each time) once its sandbox is warm — the container kept and its claude process
    alive between runs — against the same raw docker run. Target: <= 0.90.
(c) cancel -> container gone (the target: within 2 s).
(d) `python -X importtime` of a real `channelcoder run --docker-image` (docker-py is imported
    lazily, when a Docker job starts; pygls/lsprotocol never).
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "server"))
RESULTS = ROOT / "bench" / "results"
COMMAND = Path(sys.executable).parent / "channelcoder"  # the installed command users type
LABEL = "io.channelcoder.bench=sandbox"


def median(values: list[float]) -> float:
    return statistics.median(values) if values else float("nan")


def ms(value: float) -> str:
    return f"{value * 1000:.1f} ms"


def resolution(workspace: Path, count: int) -> dict[str, Any]:
    import anyio

    from channelcoder.config import DockerOptions
    from channelcoder.sandbox.image.resolve import ResolvedImage
    from channelcoder.sandbox.manager import SandboxManager

    manager = SandboxManager()

    async def resolve_once() -> tuple[float, ResolvedImage]:
        start = time.perf_counter()
        found: ResolvedImage | None = None
        async for item in manager.resolve_image(DockerOptions(), workspace):
            if isinstance(item, ResolvedImage):
                found = item
        assert found is not None
        return time.perf_counter() - start, found

    async def run() -> tuple[float, list[float], ResolvedImage]:
        first, resolved = await resolve_once()
        times = []
        for _ in range(count):
            elapsed, again = await resolve_once()
            assert not again.built and again.image_id == resolved.image_id
            times.append(elapsed)
        return first, times, resolved

    first, times, resolved = anyio.run(run)
    return {"first_s": first, "hit_s": times, "ref": resolved.ref, "resolved": resolved}


def docker_build_hit(resolved: Any, runs: int) -> list[float]:
    """`docker build` of the same bundled context: a full layer-cache hit."""
    from channelcoder.config import DockerOptions
    from channelcoder.sandbox.image.cachekey import StatMemo
    from channelcoder.sandbox.image.resolve import bundled_context, plan_build

    plan = plan_build(resolved.source, DockerOptions(), StatMemo())
    context = bundled_context(plan).getvalue()
    args = [item for name, value in plan.build_args.items() for item in ("--build-arg",
                                                                         f"{name}={value}")]
    times = []
    for _ in range(runs):
        start = time.perf_counter()
        done = subprocess.run(["docker", "build", "-q", *args, "-t", "channelcoder-bench:hit",
                               "-"], input=context, capture_output=True)
        times.append(time.perf_counter() - start)
        if done.returncode != 0:
            raise SystemExit(f"docker build failed: {done.stderr.decode()[-500:]}")
    subprocess.run(["docker", "rmi", "channelcoder-bench:hit"], capture_output=True)
    return times


def two_turn_jobs(image: str, runs: int, workspace: Path, session: str | None = None,
                  network: str = "proxy") -> dict[str, list[float]]:
    from channelcoder.testing.fake_anthropic import FakeAnthropic, Reply, Scenario, ToolCall
    from channelcoder.testing.network import bridge_gateway

    # a session's runs continue one conversation: every run is the pair of turns again
    scenario = Scenario([ToolCall("Bash", {"command": "ls"}), Reply("Listed the files.")]
                        * (runs + 2 if session else 1))
    env = {k: v for k, v in os.environ.items() if not k.startswith("ANTHROPIC_")}
    out: dict[str, list[float]] = {"channelcoder": [], "raw_docker": []}
    # The bare run's network is Docker's default (the bridge) unless channelcoder's is `host`;
    # on the bridge it reaches the scripted model on the bridge's host address.
    raw_network = "host" if network == "host" else "bridge"
    model_host = "127.0.0.1" if network == "host" else bridge_gateway()
    with FakeAnthropic(scenario, host=model_host) as api, \
            tempfile.TemporaryDirectory() as state:
        env.update(api.env(), CLAUDE_CODE_MAX_RETRIES="0", CHANNELCODER_STATE_DIR=state,
                   CHANNELCODER_CACHE_DIR=str(Path(state) / "cache"),
                   CHANNELCODER_DOCKER_LABELS=LABEL)
        ours = [str(COMMAND), "run", "--docker-image", image,
                "--network", network, *(["--session", session] if session else []),
                "-p", "list the files"]
        raw = ["docker", "run", "--rm", "--init", "--network", raw_network, "--label", LABEL,
               "-v", f"{workspace}:/workspace", "-w", "/workspace", "-e", "HOME=/tmp",
               "-e", "IS_SANDBOX=1", "-e", "CLAUDE_CODE_MAX_RETRIES=0",
               "-e", f"ANTHROPIC_BASE_URL={api.url}",
               "-e", f"ANTHROPIC_API_KEY={api.env()['ANTHROPIC_API_KEY']}",
               "-e", "DISABLE_AUTOUPDATER=1", "-e", "CLAUDE_CODE_DISABLE_NONESSENTIAL_TRAFFIC=1",
               image, "claude", "-p", "--output-format", "stream-json", "--verbose",
               "--permission-mode", "bypassPermissions", "--", "list the files"]
        for argv in (ours, raw):  # warm-up, untimed
            subprocess.run(argv, cwd=workspace, env=env, capture_output=True, check=True)
        for _ in range(runs):
            for name, argv in (("channelcoder", ours), ("raw_docker", raw)):
                start = time.perf_counter()
                done = subprocess.run(argv, cwd=workspace, env=env, capture_output=True)
                out[name].append(time.perf_counter() - start)
                if done.returncode != 0 or b"Listed the files." not in done.stdout:
                    raise SystemExit(f"{name} run failed: {done.stderr.decode()[-800:]}")
        if session:  # the warm sandbox goes with the session
            subprocess.run([sys.executable, "-m", "channelcoder", "sessions", "rm", session],
                           cwd=workspace, env=env, capture_output=True, check=True)
    return out


def cancel_to_gone(image: str, runs: int, workspace: Path, network: str) -> list[float]:
    import anyio
    import docker

    from channelcoder.claude.events import TextDelta
    from channelcoder.config import build_options
    from channelcoder.jobs import Job
    from channelcoder.request import Request
    from channelcoder.sandbox.manager import SandboxManager
    from channelcoder.testing.fake_anthropic import FakeAnthropic, Reply, Scenario, Turn

    client = docker.from_env()
    manager = SandboxManager(labels={"io.channelcoder.bench": "sandbox"})
    options = build_options({"docker": {"image": image, "network": network}})
    times: list[float] = []

    async def one() -> float:
        job = Job(Request("cancel me", options, workspace), backend=manager)
        cancelled = 0.0
        async for event in job.events():
            if isinstance(event, TextDelta) and not cancelled:
                cancelled = time.perf_counter()
                job.cancel()
        flt = {"label": f"io.channelcoder.job={job.id}"}
        while client.containers.list(all=True, filters=flt):  # noqa: ASYNC110 (polling the engine)
            await anyio.sleep(0.01)
        return time.perf_counter() - cancelled

    scenario = Scenario([Turn([Reply("word " * 100)], chunks=100, delay=0.1)])
    with FakeAnthropic(scenario) as api:
        saved = {k: os.environ.get(k) for k in api.env()}
        os.environ.update(api.env())
        try:
            for _ in range(runs):
                times.append(anyio.run(one))
        finally:
            for key, value in saved.items():
                if value is None:
                    os.environ.pop(key, None)
                else:
                    os.environ[key] = value
    return times


def import_time(image: str, workspace: Path, network: str) -> dict[str, Any]:
    """`python -X importtime` of a real `channelcoder run --docker-image` (docker is lazy)."""
    from channelcoder.testing.fake_anthropic import FakeAnthropic, Reply, Scenario

    with FakeAnthropic(Scenario([Reply("ok")])) as api, tempfile.TemporaryDirectory() as state:
        env = {**os.environ, **api.env(), "CHANNELCODER_STATE_DIR": state,
               "CHANNELCODER_CACHE_DIR": state, "CHANNELCODER_DOCKER_LABELS": LABEL}
        done = subprocess.run([sys.executable, "-X", "importtime", str(COMMAND), "run",
                               "--docker-image", image, "--network", network, "-p", "hi"],
                              cwd=workspace, env=env, capture_output=True, text=True)
    if done.returncode != 0:
        raise SystemExit(f"the importtime run failed: {done.stderr[-800:]}")
    rows = []
    for line in done.stderr.splitlines():
        if not line.startswith("import time:") or "|" not in line or "cumulative" in line:
            continue
        _, cumulative, name = line[len("import time:"):].split("|")
        rows.append((name.rstrip(), int(cumulative)))
    top = [(name.strip(), us) for name, us in rows if not name.startswith("  ")]
    top.sort(key=lambda row: -row[1])
    modules = {name.strip().split(".")[0] for name, _ in rows}
    return {"total_ms": sum(us for _, us in top) / 1000,
            "top": [{"module": n, "ms": us / 1000} for n, us in top[:8]],
            "imports_pygls": "pygls" in modules or "lsprotocol" in modules}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=15)
    parser.add_argument("--resolutions", type=int, default=30)
    parser.add_argument("--plain", action="store_true",
                        help="a workspace that is not a git repository (no git mirror)")
    parser.add_argument("--network", choices=["proxy", "host"], default="proxy",
                        help="channelcoder's network mode (the raw docker run always uses the "
                             "host's network, to reach the scripted model); default: proxy, "
                             "channelcoder's default")
    args = parser.parse_args()
    results: dict[str, Any] = {}
    # Byte-compiled, as `pip install` leaves a package (this machine sets PYTHONDONTWRITEBYTECODE,
    # so an editable checkout would otherwise compile every changed module on every run).
    subprocess.run([sys.executable, "-m", "compileall", "-q", str(ROOT / "server" / "channelcoder")],
                   check=True, capture_output=True)
    with tempfile.TemporaryDirectory(prefix="cc-bench-sandbox-") as tmp:
        os.environ.setdefault("CHANNELCODER_STATE_DIR", str(Path(tmp) / "state"))
        os.environ.setdefault("CHANNELCODER_CACHE_DIR", str(Path(tmp) / "cache"))
        workspace = Path(tmp) / "ws"
        workspace.mkdir()
        (workspace / "README.md").write_text("bench\n")
        for argv in () if args.plain else (["init", "-q", "-b", "main"], ["add", "README.md"],
                     ["-c", "user.name=bench", "-c", "user.email=bench@localhost", "commit",
                      "-q", "-m", "bench"]):
            subprocess.run(["git", *argv], cwd=workspace, check=True)

        res = resolution(workspace, args.resolutions)
        image = res["ref"]
        build = docker_build_hit(res["resolved"], args.runs)
        hit = median(res["hit_s"])
        results["resolution"] = {
            "image": image, "first_in_process_s": round(res["first_s"], 4),
            "cache_hit_median_s": round(hit, 5), "cache_hit_max_s": round(max(res["hit_s"]), 5),
            "docker_build_cache_hit_median_s": round(median(build), 4),
            "speedup": round(median(build) / hit, 1),
            "target": "<= 0.050 s and >= 10x", "met": hit <= 0.050 and median(build) / hit >= 10}
        jobs = two_turn_jobs(image, args.runs, workspace, network=args.network)
        ratio = median(jobs["channelcoder"]) / median(jobs["raw_docker"])
        warm = two_turn_jobs(image, args.runs, workspace, session="bench-warm",
                             network=args.network)
        ratio_warm = median(warm["channelcoder"]) / median(warm["raw_docker"])
        results["two_turn_job"] = {
            "runs": args.runs, "network": args.network, "git_repository": not args.plain,
            "raw_network": "host" if args.network == "host" else "bridge (Docker's default)",
            "channelcoder_median_s": round(median(jobs["channelcoder"]), 3),
            "raw_docker_median_s": round(median(jobs["raw_docker"]), 3),
            "ratio_cold": round(ratio, 3), "target_cold": "<= 1.10", "met_cold": ratio <= 1.10,
            "channelcoder_s": [round(t, 3) for t in jobs["channelcoder"]],
            "raw_docker_s": [round(t, 3) for t in jobs["raw_docker"]],
            "warm_channelcoder_median_s": round(median(warm["channelcoder"]), 3),
            "warm_raw_docker_median_s": round(median(warm["raw_docker"]), 3),
            "ratio_warm": round(ratio_warm, 3), "target_warm": "<= 0.90",
            "met_warm": ratio_warm <= 0.90,
            "warm_channelcoder_s": [round(t, 3) for t in warm["channelcoder"]],
            "warm_note": "channelcoder run --session: each run a new CLI process; the "
                         "session's container and claude process are reused"}
        cancel = cancel_to_gone(image, max(3, args.runs // 2), workspace, args.network)
        results["cancel_to_gone"] = {"median_s": round(median(cancel), 3),
                                     "max_s": round(max(cancel), 3), "target": "<= 2 s",
                                     "met": max(cancel) <= 2.0}
        results["import"] = import_time(image, workspace, args.network)

    rows = [
        ("image resolution, cache hit (median)", ms(results["resolution"]["cache_hit_median_s"]),
         "<= 50 ms"),
        ("docker build, all layers cached (median)",
         ms(results["resolution"]["docker_build_cache_hit_median_s"]), ""),
        ("  speed-up", f"{results['resolution']['speedup']}x", ">= 10x"),
        (f"2-turn job: channelcoder run --docker-image (--network {args.network})",
         f"{results['two_turn_job']['channelcoder_median_s']:.3f} s", ""),
        ("2-turn job: raw docker run ... claude -p",
         f"{results['two_turn_job']['raw_docker_median_s']:.3f} s", ""),
        ("  ratio (cold)", f"{results['two_turn_job']['ratio_cold']:.3f}", "<= 1.10"),
        ("2-turn job, repeated run with a warm sandbox",
         f"{results['two_turn_job']['warm_channelcoder_median_s']:.3f} s", ""),
        ("  ratio (warm, repeated run)", f"{results['two_turn_job']['ratio_warm']:.3f}",
         "<= 0.90"),
        ("cancel -> container gone (median / max)",
         f"{results['cancel_to_gone']['median_s']:.2f} / {results['cancel_to_gone']['max_s']:.2f} s",
         "<= 2 s"),
        ("import time of channelcoder run --docker-image", f"{results['import']['total_ms']:.0f} ms",
         "no pygls/lsprotocol" + (" (VIOLATED)" if results["import"]["imports_pygls"] else "")),
    ]
    width = max(len(r[0]) for r in rows)
    print(f"{'sandbox benchmark':{width}}  {'measured':>16}  target")
    for name, value, target in rows:
        print(f"{name:{width}}  {value:>16}  {target}")
    print("slowest imports: " + ", ".join(f"{t['module']} {t['ms']:.0f} ms"
                                           for t in results["import"]["top"][:5]))
    RESULTS.mkdir(parents=True, exist_ok=True)
    (RESULTS / "sandbox.json").write_text(json.dumps(results, indent=2) + "\n")
    print(f"wrote {RESULTS / 'sandbox.json'}")
    subprocess.run(["docker", "container", "prune", "-f", "--filter", f"label={LABEL}"],
                   capture_output=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
