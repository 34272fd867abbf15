"""The git boundary's cost on the host. Prints a table; writes bench/results/gitguard.json.

    .venv/bin/python bench/gitguard.py [--files 5000] [--runs 15]

On a repository of `--files` files (tracked, in 50 directories, one commit), with real git:
(a) before a sandboxed job: the job's git mirror opened and filled (the user's refs, HEAD and
    index copied, config written), and the "runs on your machine" watch taken;
(b) the check after the job when the job did nothing in git — the mirror reclaimed (every
    control file compared with what channelcoder wrote) and compared, the watch compared.
    Target: <= 20 ms;
(c) the same after a job that committed one file (the commit fetched with fsck, the branch
    compare-and-swapped, the staged tree read into the user's index).
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


def measure(repo: Path, runs: int, *, commit: bool) -> dict[str, list[float]]:
    from channelcoder.workspace.hostrun import Watch
    from channelcoder.workspace.mirror import open_mirror

    before: list[float] = []
    after: list[float] = []
    for run in range(runs):
        start = time.perf_counter()
        mirror = open_mirror(repo, f"bench-{commit}-{run}", keep=False)
        assert mirror is not None
        mirror.fill()
        watch = Watch(repo)
        before.append(time.perf_counter() - start)
        if commit:  # what git inside the sandbox does, against the mirror
            (repo / f"new{run}.py").write_text("NEW = 1\n")
            job = {"GIT_DIR": str(mirror.git_dir), "GIT_WORK_TREE": str(repo)}
            git(repo, "add", f"new{run}.py", env=job)
            git(repo, "-c", "user.name=claude", "-c", "user.email=claude@localhost", "commit",
                "-q", "-m", f"job {run}", env=job)
        start = time.perf_counter()
        found = mirror.bring_back()
        watch.changes()
        after.append(time.perf_counter() - start)
        mirror.release()
        assert not found.events
    return {"before_s": before, "after_s": after}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--files", type=int, default=5000)
    parser.add_argument("--runs", type=int, default=15)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="cc-bench-gitguard-") as tmp:
        os.environ["CHANNELCODER_STATE_DIR"] = str(Path(tmp) / "state")
        repo = make_repo(Path(tmp) / "repo", args.files)
        idle = measure(repo, args.runs, commit=False)
        busy = measure(repo, args.runs, commit=True)
    med = statistics.median
    results: dict[str, Any] = {
        "files": args.files, "runs": args.runs,
        "before_job_median_s": round(med(idle["before_s"]), 4),
        "check_after_job_median_s": round(med(idle["after_s"]), 4),
        "check_after_job_max_s": round(max(idle["after_s"]), 4),
        "after_a_commit_median_s": round(med(busy["after_s"]), 4),
        "target": f"check after a job <= {TARGET_S * 1000:.0f} ms",
        "met": med(idle["after_s"]) <= TARGET_S,
    }
    rows = [("before the job: mirror filled + watch taken", results["before_job_median_s"]),
            ("check after a job that did nothing in git", results["check_after_job_median_s"]),
            ("  (slowest of the runs)", results["check_after_job_max_s"]),
            ("check after a job that committed a file", results["after_a_commit_median_s"])]
    print(f"git boundary on a repository of {args.files} files ({args.runs} runs, medians)")
    for label, value in rows:
        print(f"  {label:<48} {value * 1000:7.1f} ms")
    print(f"  target: {results['target']} — {'met' if results['met'] else 'NOT met'}")
    RESULTS.mkdir(parents=True, exist_ok=True)
    (RESULTS / "gitguard.json").write_text(json.dumps(results, indent=2) + "\n")
    return 0 if results["met"] else 1


if __name__ == "__main__":
    sys.exit(main())
