"""`make demo`: one scripted job end to end, inside the Docker sandbox, offline.

The real Claude Code CLI runs in the sandbox image built from the project's Dockerfile (the
first run builds it, streaming the build log; later runs reuse it) against channelcoder's
scripted model, not a real Claude: it runs the project's tests with Bash, reads the buggy
file, fixes it with Edit, and answers. The demo shows the `docker run` line, the streamed
events and the resulting `git diff` of a scratch repository, whose files stay yours.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

from channelcoder.testing.fake_anthropic import FakeAnthropic, Reply, Scenario, ToolCall, Turn

BUGGY = '''def average(values):
    """The mean of a non-empty list."""
    return sum(values) / len(values) + 1
'''
TEST = '''from stats import average

assert average([2, 4]) == 3, f"average([2, 4]) = {average([2, 4])}"
print("tests pass")
'''


def banner(text: str) -> None:
    print(f"\n\033[1m== {text}\033[0m", flush=True)


def scenario() -> Scenario:
    stats = "/workspace/stats.py"  # the repository is mounted there inside the sandbox
    return Scenario([
        ToolCall("Bash", {"command": "python3 test_stats.py", "description": "run the tests"}),
        ToolCall("Read", {"file_path": stats}),
        ToolCall("Edit", {"file_path": stats,
                          "old_string": "return sum(values) / len(values) + 1",
                          "new_string": "return sum(values) / len(values)"}),
        ToolCall("Bash", {"command": "python3 test_stats.py", "description": "run the tests"}),
        Turn([Reply("Fixed `average`: it added 1 to the mean. The tests pass now.")],
             chunks=12, delay=0.04),
    ])


def git(repo: Path, *args: str) -> str:
    return subprocess.run(["git", *args], cwd=repo, check=True, capture_output=True,
                          text=True).stdout


def main() -> int:
    root = Path(tempfile.mkdtemp(prefix="channelcoder-demo-"))
    repo = root / "project"
    repo.mkdir()
    try:
        (repo / "stats.py").write_text(BUGGY)
        (repo / "test_stats.py").write_text(TEST)
        git(repo, "init", "-q", "-b", "main")
        git(repo, "-c", "user.name=demo", "-c", "user.email=demo@example.com", "add", ".")
        git(repo, "-c", "user.name=demo", "-c", "user.email=demo@example.com",
            "commit", "-q", "-m", "stats with a bug")
        banner("channelcoder demo — SCRIPTED MODEL (offline; no real Claude is called)")
        print(f"scratch repository: {repo}")
        with FakeAnthropic(scenario()) as api:
            env = {k: v for k, v in os.environ.items() if not k.startswith("ANTHROPIC_")}
            env.update(api.env())
            env.setdefault("CHANNELCODER_STATE_DIR", str(root / "state"))
            # The default network mode: no route out but channelcoder's egress proxy, whose
            # upstream is the scripted model on 127.0.0.1; inside, the key is a placeholder.
            argv = [sys.executable, "-m", "channelcoder", "run", "--docker", "--verbose",
                    "Fix the failing test in this repository."]
            banner("$ channelcoder run --docker --verbose 'Fix the failing test …'")
            code = subprocess.run(argv, cwd=repo, env=env).returncode
        banner("git diff")
        print(git(repo, "diff") or "(no changes)")
        if code != 0:
            print(f"demo failed: channelcoder exited with {code}", file=sys.stderr)
            return code
        if "return sum(values) / len(values)\n" not in (repo / "stats.py").read_text():
            print("demo failed: the fix did not land", file=sys.stderr)
            return 1
        owner = (repo / "stats.py").stat().st_uid
        if owner != os.getuid():
            print(f"demo failed: stats.py now belongs to uid {owner}", file=sys.stderr)
            return 1
        banner("demo passed")
        return 0
    finally:
        shutil.rmtree(root, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(main())
