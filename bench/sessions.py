"""Benchmarks for sessions and review snapshots. Prints a table; writes bench/results/sessions.json.

    .venv/bin/python bench/sessions.py [--files 5000] [--repeats 7] [--turns 5] [--skip-turns]

Measured here:
- snapshot creation for a 5,000-file git repository with uncommitted work and unsaved buffers
  (target <= 1 s), the same for a non-git copy, the refresh of a session's snapshot, and
  collecting a proposal;
- a session's follow-up turn (resume) natively, in a fresh sandbox container (keep_warm 0), and
  in the session's warm sandbox (its container kept warm and its claude process alive between
  turns); the warm/fresh ratio of the follow-up medians has the target <= 0.1.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "server"))
RESULTS = ROOT / "bench" / "results"


def git(cwd: Path, *args: str) -> None:
    subprocess.run(["git", *args], cwd=cwd, check=True, capture_output=True)


def make_repo(root: Path, files: int) -> Path:
    """A repository of `files` small source files in nested directories, plus dirty work."""
    repo = root / "repo"
    for i in range(files):
        path = repo / f"pkg{i % 50:02d}" / f"sub{i % 7}" / f"module_{i}.py"
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text("".join(f"def f_{i}_{n}(x):\n    return x + {n}\n" for n in range(20)))
    (repo / ".gitignore").write_text("*.log\nbuild/\n")
    git(repo, "init", "-q", "-b", "main")
    git(repo, "-c", "user.email=b@example.com", "-c", "user.name=bench", "add", "-A")
    git(repo, "-c", "user.email=b@example.com", "-c", "user.name=bench", "commit", "-qm", "init")
    for i in range(10):
        (repo / f"pkg{i:02d}" / "sub0" / f"module_{i * 50 if i % 7 == 0 else i}.py").write_text(
            f"# edited {i}\n")
    for i in range(5):
        (repo / f"untracked_{i}.py").write_text("NEW = 1\n")
    (repo / "build").mkdir()
    (repo / "build" / "ignored.bin").write_bytes(os.urandom(1 << 20))
    return repo


def timed(fn: Callable[[], Any], repeats: int) -> tuple[list[float], Any]:
    times: list[float] = []
    value: Any = None
    for _ in range(repeats):
        start = time.perf_counter()
        value = fn()
        times.append(time.perf_counter() - start)
    return times, value


def stats(times: list[float]) -> dict[str, float]:
    return {"median_s": round(statistics.median(times), 4), "min_s": round(min(times), 4),
            "max_s": round(max(times), 4), "runs": len(times)}


def snapshot_benchmarks(files: int, repeats: int) -> dict[str, Any]:
    from channelcoder.workspace.snapshot import create_snapshot, prepare_spare

    out: dict[str, Any] = {}
    with tempfile.TemporaryDirectory(prefix="cc-bench-") as tmp:
        root = Path(tmp)
        os.environ["CHANNELCODER_STATE_DIR"] = str(root / "state")
        repo = make_repo(root, files)
        buffers = {f"pkg{i:02d}/sub1/module_{i + 50}.py": f"# unsaved {i}\n" for i in range(3)}

        cold: list[float] = []
        for _ in range(repeats):
            start = time.perf_counter()
            snap = create_snapshot(repo, buffers, use_spare=False)
            cold.append(time.perf_counter() - start)
            snap.discard()
        out["snapshot_git_cold"] = {**stats(cold), "files": files, "target_s": 1.0}

        warm: list[float] = []
        for _ in range(repeats):
            wait_for_spare_builders()
            prepare_spare(repo)
            (repo / "pkg01" / "sub1" / "module_51.py").write_text(f"# user edit {_}\n")
            start = time.perf_counter()
            snap = create_snapshot(repo, buffers)
            warm.append(time.perf_counter() - start)
            snap.discard()
        wait_for_spare_builders()
        out["snapshot_git_from_spare"] = {**stats(warm), "files": files, "target_s": 1.0}

        snap = create_snapshot(repo, buffers, use_spare=False)
        for i in range(10):
            (snap.cwd / f"pkg{i:02d}" / "sub3" / f"module_{i + 3 * 50}.py").write_text("# job\n")
        times, changes = timed(snap.collect, repeats)
        out["collect_10_edits"] = {**stats(times), "files_changed": len(changes.files)}
        snap.release()

        def refresh() -> Any:
            again = create_snapshot(repo, buffers, snapshot_id=snap.id)
            again.release()
            return again

        times, _ = timed(refresh, repeats)
        out["snapshot_refresh"] = stats(times)
        snap.discard()

        plain = root / "plain"
        shutil.copytree(repo, plain, ignore=shutil.ignore_patterns(".git"))

        copies: list[float] = []
        for _ in range(max(3, repeats // 2)):
            start = time.perf_counter()
            made = create_snapshot(plain, use_spare=False)
            copies.append(time.perf_counter() - start)
            made.discard()
        out["snapshot_non_git_copy_cold"] = {**stats(copies), "files": files}
        create_fs = []
        for n in range(3):
            start = time.perf_counter()
            target = root / f"floor{n}"
            for i in range(files):
                path = target / f"pkg{i % 50:02d}" / f"sub{i % 7}" / f"module_{i}.py"
                path.parent.mkdir(parents=True, exist_ok=True)
                path.write_bytes(b"x" * 800)
            create_fs.append(time.perf_counter() - start)
            shutil.rmtree(target)
        out["floor_write_files_python"] = {**stats(create_fs), "files": files,
                                           "note": "just creating the files, for scale"}
    return out


def wait_for_spare_builders() -> None:
    import threading

    for thread in threading.enumerate():
        if thread.name == "channelcoder-spare-snapshot":
            thread.join()


def session_turns(turns: int, *, docker: dict[str, Any] | None = None,
                  extra: dict[str, Any] | None = None) -> dict[str, Any]:
    """First turn and follow-up turns of one session against the scripted model (median)."""
    import anyio

    from channelcoder import session
    from channelcoder.testing.fake_anthropic import FakeAnthropic, Reply, Scenario

    with tempfile.TemporaryDirectory(prefix="cc-bench-turns-") as tmp, \
            FakeAnthropic(Scenario([Reply(f"answer {n}") for n in range(turns + 1)])) as api:
        os.environ.update(api.env())
        os.environ.setdefault("CLAUDE_CODE_MAX_RETRIES", "0")
        workspace = Path(tmp) / "ws"
        workspace.mkdir()
        options: dict[str, Any] = {"workspace": workspace, **(extra or {})}
        if docker is not None:
            options["docker"] = docker

        async def run() -> tuple[float, list[float]]:
            s = session(f"bench-{os.getpid()}-{int(time.time())}", **options)
            start = time.perf_counter()
            first = await s.claude("first turn")
            if not first.ok:
                raise RuntimeError(first.error)
            cold = time.perf_counter() - start
            follow: list[float] = []
            for n in range(turns):
                start = time.perf_counter()
                result = await s.claude(f"follow-up {n}")
                if not result.ok:
                    raise RuntimeError(result.error)
                follow.append(time.perf_counter() - start)
            s.remove()
            return cold, follow

        cold, follow = anyio.run(run)
    return {"first_turn_s": round(cold, 4), "follow_up": stats(follow)}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--files", type=int, default=5000)
    parser.add_argument("--repeats", type=int, default=7)
    parser.add_argument("--turns", type=int, default=5)
    parser.add_argument("--skip-turns", action="store_true")
    args = parser.parse_args()
    os.environ.setdefault("CHANNELCODER_CLAUDE", str(ROOT / ".venv" / "bin" / "claude"))
    results: dict[str, Any] = {"snapshots": snapshot_benchmarks(args.files, args.repeats)}
    if not args.skip_turns:
        results["session_native"] = session_turns(args.turns)
        try:
            fresh = session_turns(args.turns, docker={"keep_warm": 0})
            warm = session_turns(args.turns, docker={"keep_warm": 300})
            results["session_docker_fresh_container"] = fresh
            results["session_docker_warm"] = warm
            ratio = warm["follow_up"]["median_s"] / fresh["follow_up"]["median_s"]
            results["session_warm_vs_fresh"] = {"ratio": round(ratio, 3), "target": 0.1,
                                                "met": ratio <= 0.1}
        except Exception as exc:  # the sandbox may be missing on this machine
            results["session_docker_fresh_container"] = {"skipped": str(exc).splitlines()[0]}
    print_table(results)
    RESULTS.mkdir(parents=True, exist_ok=True)
    (RESULTS / "sessions.json").write_text(json.dumps(
        {"machine": os.uname().nodename, "cpus": os.cpu_count(), "time": time.time(),
         **results}, indent=2) + "\n")
    return 0


def print_table(results: dict[str, Any]) -> None:
    print(f"{'benchmark':<40} {'median':>9} {'min':>9} {'max':>9}  note")
    for group, entries in results.items():
        if not isinstance(entries, dict):
            continue
        flat = entries if "median_s" in entries or "skipped" in entries or "pending" in entries \
            or "ratio" in entries else None
        rows = {group: flat} if flat else entries
        for name, row in rows.items():
            label = name if flat else f"{group}.{name}"
            if isinstance(row, dict) and "median_s" in row:
                note = f"target <= {row['target_s']} s" if "target_s" in row else ""
                print(f"{label:<40} {row['median_s']:>8.3f}s {row['min_s']:>8.3f}s "
                      f"{row['max_s']:>8.3f}s  {note}")
            elif isinstance(row, dict) and "follow_up" in row:
                fu = row["follow_up"]
                print(f"{label + ' follow-up':<40} {fu['median_s']:>8.3f}s {fu['min_s']:>8.3f}s "
                      f"{fu['max_s']:>8.3f}s  first turn {row['first_turn_s']:.3f}s")
            elif isinstance(row, dict) and "ratio" in row:
                print(f"{label:<40} {row['ratio']:>9.3f} {'':>9} {'':>9}  target <= "
                      f"{row['target']} ({'met' if row['met'] else 'NOT met'})")
            elif isinstance(row, float | int):
                print(f"{label:<40} {row:>8.3f}s")
            else:
                print(f"{label:<40} {'-':>9} {'-':>9} {'-':>9}  {row}")


if __name__ == "__main__":
    sys.exit(main())
