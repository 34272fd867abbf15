"""Remote engines: what copying a workspace costs, and what one job uses. Prints a table;
writes bench/results/remote.json.

    .venv/bin/python bench/remote.py [--files 5000] [--runs 3]
    .venv/bin/python bench/remote.py --warm [--files 500] [--runs 5]   (c) only

(a) Copy-in through the Engine API (`sandbox.remote.volumes.fill`) of a git repository of
    `--files` files (1 KB each, in 50 directories, one commit; its .git placed at
    /workspace/.git as the mirror is), to a fresh volume; then the follow-up after one file
    changed (only that file goes); then the bring-back after the job changed one file (the
    volume is read and compared by content hash). Against the remote test engine
    (scripts/remote-engine.sh: TLS over loopback, to dockerd in a container) and against the
    local engine forced into remote mode. A local engine's bind mount copies nothing: 0 s.
(b) One job's resources: a scripted job (the real CLI in the sandbox, proxy mode) whose tool
    sleeps 3 s, sampled from the engine's stats: peak memory and CPU time of the container.
(c) `--warm`: a named session's follow-up on the remote engine, one file edited before each,
    its whole wall time through the Python API (copy-in, the turn with one Bash call, the
    bring-back of the file it writes): kept warm (the same container and live claude) against
    not (a one-shot container per turn). Writes bench/results/remote_warm.json.
"""

from __future__ import annotations

import argparse
import io
import json
import os
import statistics
import subprocess
import sys
import tarfile
import tempfile
import time
import uuid
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "server"))
RESULTS = ROOT / "bench" / "results"
LABELS = {"io.channelcoder.bench": "remote"}


def make_repo(root: Path, files: int) -> Path:
    root.mkdir(parents=True)
    for n in range(files):
        path = root / f"dir{n % 50:02d}" / f"file{n:05d}.py"
        path.parent.mkdir(exist_ok=True)
        path.write_text(f"# file {n}\n" + "x = 1\n" * 170)
    for args in (["init", "-q", "-b", "main"], ["add", "-A"],
                 ["-c", "user.email=b@example.com", "-c", "user.name=bench", "commit", "-qm",
                  "files"]):
        subprocess.run(["git", *args], cwd=root, check=True, capture_output=True)
    return root


def image_ref() -> str:
    import anyio

    from channelcoder.config import DockerOptions
    from channelcoder.sandbox.image.resolve import ResolvedImage
    from channelcoder.sandbox.manager import SandboxManager

    async def resolve() -> str:
        async for item in SandboxManager().resolve_image(DockerOptions(), ROOT):
            if isinstance(item, ResolvedImage):
                return item.ref
        raise SystemExit("no sandbox image")

    return anyio.run(resolve)


def remote_env(image: str) -> dict[str, str]:
    done = subprocess.run([str(ROOT / "scripts" / "remote-engine.sh"), image],
                          capture_output=True, text=True)
    if done.returncode != 0:
        raise SystemExit(f"the remote engine did not start:\n{done.stderr[-2000:]}")
    pairs = (line.partition("=") for line in
             (ROOT / ".cache" / "remote-engine" / "env").read_text().splitlines())
    env = {k: v for k, _, v in pairs}
    return {"DOCKER_HOST": env["REMOTE_TLS_HOST"], "DOCKER_TLS_VERIFY": "1",
            "DOCKER_CERT_PATH": env["REMOTE_CERT_PATH"]}


def one_file_tar(name: str, data: bytes) -> bytes:
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w") as tar:
        info = tarfile.TarInfo(name)
        info.size = len(data)
        tar.addfile(info, io.BytesIO(data))
    return buffer.getvalue()


def copy_figures(api: Any, repo: Path, image: str, runs: int) -> dict[str, Any]:
    from channelcoder.sandbox.container.mounts import CONFIG_DIR, Mount
    from channelcoder.sandbox.remote import volumes

    engine_id = str(api.info().get("ID"))
    out: dict[str, list[float]] = {"first_s": [], "follow_up_s": [], "bring_back_s": []}
    sent: dict[str, int] = {}
    for run in range(runs):
        config = Path(tempfile.mkdtemp())
        layout = volumes.plan_layout(
            [Mount(repo, "/workspace"), Mount(repo / ".git", "/workspace/.git"),
             Mount(config, CONFIG_DIR)],
            scope=f"bench\0{uuid.uuid4().hex}", keep=True, config_target=CONFIG_DIR)
        try:
            start = time.perf_counter()
            first = volumes.fill(api, engine_id, layout, image=image, uid=0, gid=0,
                                 labels=LABELS)
            out["first_s"].append(time.perf_counter() - start)
            target = repo / "dir07" / f"file{7:05d}.py"
            target.write_text(f"# changed in run {run}\n")
            start = time.perf_counter()
            again = volumes.fill(api, engine_id, layout, image=image, uid=0, gid=0,
                                 labels=LABELS)
            out["follow_up_s"].append(time.perf_counter() - start)
            sent = {"first_files": first.sent_files, "first_bytes": first.sent_bytes,
                    "follow_up_files": again.sent_files, "follow_up_bytes": again.sent_bytes}
            helper = volumes._helper(api, image, layout.volumes, LABELS)
            try:
                api.put_archive(helper, f"{volumes.HELPER_ROOT}/0",
                                one_file_tar("dir09/file00009.py", f"# job {run}\n".encode()))
            finally:
                api.remove_container(helper, force=True)
            start = time.perf_counter()
            applied = volumes.bring_back(api, engine_id, layout, image=image, labels=LABELS)
            out["bring_back_s"].append(time.perf_counter() - start)
            assert applied[0].written == ["dir09/file00009.py"], applied
        finally:
            for volume in layout.volumes:
                if volume.target != volumes.SUPPORT_ROOT:
                    api.remove_volume(volume.name, force=True)
    return {**{k: round(statistics.median(v), 3) for k, v in out.items()},
            **{f"{k}_all": [round(x, 3) for x in v] for k, v in out.items()}, **sent}


def job_resources(image: str, workspace: Path) -> dict[str, Any]:
    """Peak memory and CPU time of one scripted job's container, from the engine's stats."""
    import threading

    import anyio

    from channelcoder.config import build_options
    from channelcoder.jobs import Job
    from channelcoder.request import Request
    from channelcoder.sandbox.engine.api import EngineAPI
    from channelcoder.sandbox.manager import SandboxManager
    from channelcoder.testing.fake_anthropic import FakeAnthropic, Reply, Scenario, ToolCall

    api = EngineAPI()
    peak = {"memory": 0, "cpu_ns": 0}
    stop = threading.Event()

    def sample() -> None:
        while not stop.is_set():
            for item in api.containers(filters={"label": "io.channelcoder.bench=remote"}):
                try:
                    stats = api._call("GET", f"/containers/{item['Id']}/stats",
                                      params={"stream": False}) or {}
                except Exception:
                    continue
                memory = stats.get("memory_stats") or {}
                peak["memory"] = max(peak["memory"], int(memory.get("max_usage")
                                                         or memory.get("usage") or 0))
                cpu = ((stats.get("cpu_stats") or {}).get("cpu_usage") or {})
                peak["cpu_ns"] = max(peak["cpu_ns"], int(cpu.get("total_usage") or 0))
            time.sleep(0.2)

    scenario = Scenario([ToolCall("Bash", {"command": "sleep 3"}), Reply("Slept.")])
    with FakeAnthropic(scenario) as fake:
        os.environ.update(fake.env())
        options = build_options({"docker": {"image": image, "keep_warm": 0}})
        manager = SandboxManager(labels=LABELS)
        thread = threading.Thread(target=sample, daemon=True)
        thread.start()

        async def run() -> float:
            start = time.perf_counter()
            async for _ in Job(Request("sleep", options, workspace), backend=manager).events():
                pass
            return time.perf_counter() - start

        wall = anyio.run(run)
        stop.set()
        thread.join()
    return {"peak_memory_mb": round(peak["memory"] / 2**20, 1),
            "cpu_s": round(peak["cpu_ns"] / 1e9, 2), "wall_s": round(wall, 2),
            "note": "a two-turn scripted job whose Bash tool sleeps 3 s; the container's "
                    "cgroup: claude, its supervisor and the egress forwarder"}


async def _timed(chat: Any, prompt: str) -> float:
    start = time.perf_counter()
    result = await chat.claude(prompt)
    if not result.ok:
        raise SystemExit(f"the turn failed: {result.error}")
    return time.perf_counter() - start


def follow_ups(image: str, workspace: Path, runs: int) -> dict[str, Any]:
    import anyio

    from channelcoder import session
    from channelcoder.sandbox.manager import SandboxManager
    from channelcoder.session_cleanup import remove_session
    from channelcoder.testing.fake_anthropic import FakeAnthropic, Reply, Scenario, ToolCall

    turn = [ToolCall("Bash", {"command": "cat dir00/file00000.py > /dev/null; echo x > out.txt"}),
            Reply("Done.")]
    figures: dict[str, Any] = {}
    for name, keep in (("one_shot", 0), ("kept_warm", 300)):
        with FakeAnthropic(Scenario(turn * (runs + 1))) as fake:
            os.environ.update(fake.env())
            SandboxManager._shared = SandboxManager(labels=LABELS)
            chat = session(f"bench-{name}", workspace=workspace, apply="direct",
                           docker={"image": image, "keep_warm": keep})

            first = anyio.run(_timed, chat, "first")
            times = []
            for n in range(runs):
                (workspace / "dir01" / "file00001.py").write_text(f"# edited {n}\n")
                times.append(anyio.run(_timed, chat, f"follow-up {n}"))
            remove_session(f"bench-{name}")
        figures[name] = {"first_s": round(first, 3),
                         "follow_up_s": round(statistics.median(times), 3),
                         "follow_ups_s": [round(t, 3) for t in times]}
    return figures


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--files", type=int, default=None)
    parser.add_argument("--runs", type=int, default=None)
    parser.add_argument("--warm", action="store_true", help="only (c): warm follow-ups")
    args = parser.parse_args()
    if args.warm:
        return main_warm(args.files or 500, args.runs or 5)
    args.files, args.runs = args.files or 5000, args.runs or 3
    from channelcoder.sandbox.engine.address import engine_address
    from channelcoder.sandbox.engine.api import EngineAPI

    image = image_ref()
    env = remote_env(image)
    with tempfile.TemporaryDirectory() as tmp:
        os.environ["CHANNELCODER_STATE_DIR"] = str(Path(tmp) / "state")
        repo = make_repo(Path(tmp) / "repo", args.files)
        results: dict[str, Any] = {"files": args.files, "runs": args.runs, "image": image}
        results["remote_tls"] = copy_figures(EngineAPI(engine_address(env)), repo, image,
                                             args.runs)
        results["local_forced_remote"] = copy_figures(EngineAPI(), repo, image, args.runs)
        results["local_bind_mount_s"] = 0.0
        results["job"] = job_resources(image, repo)
    print(f"\ncopy-in of a {args.files}-file repository (median of {args.runs})")
    print(f"{'engine':<28}{'first':>10}{'follow-up':>12}{'bring-back':>12}{'sent':>16}")
    for name in ("remote_tls", "local_forced_remote"):
        row = results[name]
        print(f"{name:<28}{row['first_s']:>9.3f}s{row['follow_up_s']:>11.3f}s"
              f"{row['bring_back_s']:>11.3f}s{row['first_files']:>7} → {row['follow_up_files']}")
    print(f"{'local (bind mount)':<28}{0:>9.3f}s{0:>11.3f}s{0:>11.3f}s{'nothing':>16}")
    job = results["job"]
    print(f"\none job: peak memory {job['peak_memory_mb']} MB, CPU {job['cpu_s']} s, "
          f"wall {job['wall_s']} s")
    RESULTS.mkdir(exist_ok=True)
    (RESULTS / "remote.json").write_text(json.dumps(results, indent=1) + "\n")
    return 0


def main_warm(files: int, runs: int) -> int:
    image = image_ref()
    os.environ.update(remote_env(image))
    with tempfile.TemporaryDirectory() as tmp:
        os.environ["CHANNELCODER_STATE_DIR"] = str(Path(tmp) / "state")
        repo = make_repo(Path(tmp) / "repo", files)
        results: dict[str, Any] = {"files": files, "runs": runs, "image": image,
                                   **follow_ups(image, repo, runs)}
    print(f"\na session's follow-up on the remote engine (TLS), {files}-file repository, "
          f"one file edited (median of {runs})")
    print(f"{'':<12}{'first turn':>12}{'follow-up':>12}")
    for name in ("one_shot", "kept_warm"):
        row = results[name]
        print(f"{name:<12}{row['first_s']:>11.3f}s{row['follow_up_s']:>11.3f}s")
    ratio = results["kept_warm"]["follow_up_s"] / results["one_shot"]["follow_up_s"]
    results["warm_over_one_shot"] = round(ratio, 3)
    print(f"kept warm / one-shot: {ratio:.2f}")
    RESULTS.mkdir(exist_ok=True)
    (RESULTS / "remote_warm.json").write_text(json.dumps(results, indent=1) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
