"""The git boundary's cost on the host. Prints a table; writes bench/results/gitguard.json.

    .venv/bin/python bench/gitguard.py [--files 5000] [--runs 15]

On a repository of `--files` files (tracked, in 50 directories, one commit), with real git,
through `prepare_workplace` — what a sandboxed direct-mode job gets from the workspace package:
(a) before the job: a dead job's mirror recovered (none here), the job's git mirror opened and
    filled (the user's refs, HEAD and index copied, config written), the "runs on your machine"
    watch taken;
(b) the check after the job when the job did nothing in git — the mirror reclaimed (every
    control file compared with what channelcoder wrote) and compared, the watch compared.
    Target: <= 20 ms;
(c) the same after a job that committed one file (the commit fetched with fsck, the branch
    compare-and-swapped, the staged tree read into the user's index);
(d) the same after a job that set `core.fsmonitor` in its git dir (found, reported, discarded).
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
TARGET_S = 0.020


def git(repo: Path, *args: str, env: dict[str, str] | None = None) -> None:
    subprocess.run(["git", *args], cwd=repo, check=True, capture_output=True,
                   env={**os.environ, **(env or {})})


def make_repo(path: Path, files: int) -> Path:
    path.mkdir(parents=True)
    git(path, "init", "-q", "-b", "main")
    for i in range(files):
        folder = path / f"pkg{i % 50}"
        folder.mkdir(exist_ok=True)
        (folder / f"mod{i}.py").write_text(f"VALUE = {i}\n")
    (path / "Makefile").write_text("all:\n\techo hi\n")
    git(path, "add", ".")
    git(path, "-c", "user.name=bench", "-c", "user.email=bench@localhost", "commit", "-q", "-m",
        "bench")
    git(path, "status", "--short")  # a fresh index, as a user's would be
    return path


def mirror_dir(place: Any) -> Path:
    """The host side of the job's `.git` mount: the git dir the sandbox works in."""
    return next(Path(m.host) for m in place.mounts if m.target == ".git")


def measure(repo: Path, runs: int, *, job: str) -> dict[str, list[float]]:
    """`job`: what the job does in git between the two measurements (nothing, commit, plant)."""
    import anyio

    from channelcoder.config import DockerOptions, RunOptions
    from channelcoder.request import Request
    from channelcoder.workspace import prepare_workplace

    request = Request("bench", RunOptions(docker=DockerOptions()), workspace=repo)
    before: list[float] = []
    after: list[float] = []
    for run in range(runs):
        start = time.perf_counter()
        place = anyio.run(prepare_workplace, request, f"bench-{job}-{run}")
        before.append(time.perf_counter() - start)
        assert place.after_job is not None
        inside = {"GIT_DIR": str(mirror_dir(place)), "GIT_WORK_TREE": str(repo)}
        if job == "commit":
            (repo / f"new{run}.py").write_text("NEW = 1\n")
            git(repo, "add", f"new{run}.py", env=inside)
            git(repo, "-c", "user.name=claude", "-c", "user.email=claude@localhost", "commit",
                "-q", "-m", f"job {run}", env=inside)
        elif job == "plant":
            git(repo, "config", "core.fsmonitor", "touch /nonexistent/ran", env=inside)
        start = time.perf_counter()
        found = place.after_job()
        after.append(time.perf_counter() - start)
        if place.release is not None:
            place.release()
        assert bool(found.events) == (job == "plant"), found.events
    return {"before_s": before, "after_s": after}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--files", type=int, default=5000)
    parser.add_argument("--runs", type=int, default=15)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="cc-bench-gitguard-") as tmp:
        os.environ["CHANNELCODER_STATE_DIR"] = str(Path(tmp) / "state")
        repo = make_repo(Path(tmp) / "repo", args.files)
        idle = measure(repo, args.runs, job="nothing")
        busy = measure(repo, args.runs, job="commit")
        planted = measure(repo, args.runs, job="plant")
        assert "fsmonitor" not in subprocess.run(["git", "config", "--list"], cwd=repo,
                                                 capture_output=True, text=True).stdout
    med = statistics.median
    results: dict[str, Any] = {
        "files": args.files, "runs": args.runs,
        "before_job_median_s": round(med(idle["before_s"]), 4),
        "check_after_job_median_s": round(med(idle["after_s"]), 4),
        "check_after_job_max_s": round(max(idle["after_s"]), 4),
        "after_a_commit_median_s": round(med(busy["after_s"]), 4),
        "after_a_plant_median_s": round(med(planted["after_s"]), 4),
        "target": f"check after a job <= {TARGET_S * 1000:.0f} ms",
        "met": med(idle["after_s"]) <= TARGET_S,
    }
    rows = [("before the job: recover, mirror filled, watch taken", results["before_job_median_s"]),
            ("check after a job that did nothing in git", results["check_after_job_median_s"]),
            ("  (slowest of the runs)", results["check_after_job_max_s"]),
            ("check after a job that committed a file", results["after_a_commit_median_s"]),
            ("check after a job that set core.fsmonitor", results["after_a_plant_median_s"])]
    print(f"git boundary on a repository of {args.files} files ({args.runs} runs, medians)")
    for label, value in rows:
        print(f"  {label:<52} {value * 1000:7.1f} ms")
    print(f"  target: {results['target']} — {'met' if results['met'] else 'NOT met'}")
    RESULTS.mkdir(parents=True, exist_ok=True)
    (RESULTS / "gitguard.json").write_text(json.dumps(results, indent=2) + "\n")
    return 0 if results["met"] else 1


if __name__ == "__main__":
    sys.exit(main())
