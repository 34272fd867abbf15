"""Shared fixtures. The only fake is the model (channelcoder.testing.fake_anthropic)."""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from channelcoder.testing.fake_anthropic import FakeAnthropic, Scenario, TurnLike

pytest_plugins = ["tests.plugins.docker", "tests.plugins.remote_engine"]

ROOT = Path(__file__).resolve().parents[1]
VERSION_FILE = ROOT / "server/channelcoder/sandbox/image/claude-code.version"
CLAUDE_CODE_VERSION = VERSION_FILE.read_text().strip()
PINNED_CLAUDE = ROOT / f".cache/claude-code/{CLAUDE_CODE_VERSION}/node_modules/.bin/claude"
FIXTURES = ROOT / "tests/fixtures"


@pytest.fixture(autouse=True, scope="session")
def _private_state(tmp_path_factory: pytest.TempPathFactory) -> Iterator[None]:
    """Each test run keeps its state, caches and trust records to itself."""
    saved = dict(os.environ)
    os.environ["CHANNELCODER_STATE_DIR"] = str(tmp_path_factory.mktemp("state"))
    os.environ["CHANNELCODER_CACHE_DIR"] = str(tmp_path_factory.mktemp("cache"))
    os.environ["CHANNELCODER_CLAUDE"] = str(PINNED_CLAUDE)
    for name in ("ANTHROPIC_API_KEY", "ANTHROPIC_BASE_URL", "CLAUDE_CODE_OAUTH_TOKEN",
                 "ANTHROPIC_AUTH_TOKEN", "CLAUDECODE", "CLAUDE_CODE_ENTRYPOINT"):
        os.environ.pop(name, None)
    yield
    os.environ.clear()
    os.environ.update(saved)


@pytest.fixture
def claude_bin() -> Path:
    if not PINNED_CLAUDE.exists():
        pytest.fail(f"the pinned Claude CLI is missing at {PINNED_CLAUDE}; run 'make setup'")
    return PINNED_CLAUDE


@pytest.fixture
def scripted(monkeypatch: pytest.MonkeyPatch) -> Iterator[Callable[..., FakeAnthropic]]:
    """Start the scripted model and point claude at it: scripted([turn, ...]) -> server."""
    servers: list[FakeAnthropic] = []

    def start(turns: Scenario | list[TurnLike], **kwargs: object) -> FakeAnthropic:
        scenario = turns if isinstance(turns, Scenario) else Scenario(turns, **kwargs)  # type: ignore[arg-type]
        api = FakeAnthropic(scenario).start()
        servers.append(api)
        for key, value in api.env().items():
            monkeypatch.setenv(key, value)
        return api

    yield start
    for api in servers:
        api.stop()


def git(cwd: Path, *args: str) -> str:
    return subprocess.run(["git", *args], cwd=cwd, check=True, capture_output=True,
                          text=True).stdout


def make_repo(repo: Path, files: dict[str, str]) -> Path:
    """A new git repository at `repo` (created) with `files` committed on branch main."""
    repo.mkdir(parents=True, exist_ok=True)
    git(repo, "init", "-q", "-b", "main")
    git(repo, "config", "user.email", "test@example.com")
    git(repo, "config", "user.name", "Test")
    for name, text in files.items():
        (repo / name).write_text(text)
    git(repo, "add", ".")
    git(repo, "commit", "-q", "-m", "initial")
    return repo


DIE_MID_JOB = """
import os, subprocess, sys
from pathlib import Path
from channelcoder.workspace.mirror import open_mirror
repo, fsmonitor = Path(sys.argv[1]), sys.argv[2]
mirror = open_mirror(repo, "job-died", keep=False)
mirror.fill()
env = {**os.environ, "GIT_DIR": str(mirror.git_dir), "GIT_WORK_TREE": str(repo)}
(repo / "late.py").write_text("LATE = 1\\n")
subprocess.run(["git", "add", "late.py"], cwd=repo, env=env, check=True)
subprocess.run(["git", "commit", "-qm", "made before the crash"], cwd=repo, env=env, check=True)
subprocess.run(["git", "config", "core.fsmonitor", fsmonitor], cwd=repo, env=env, check=True)
os._exit(9)
"""


def die_mid_job(repo: Path, fsmonitor: str) -> None:
    """A sandboxed job's process that dies mid-run: its git mirror holds a commit and a planted
    `core.fsmonitor`, and nothing was brought back (its lock goes with the process)."""
    died = subprocess.run([sys.executable, "-c", DIE_MID_JOB, str(repo), fsmonitor],
                          capture_output=True, text=True)
    assert died.returncode == 9, died.stderr
    assert git(repo, "log", "-1", "--format=%s") == "initial\n"


def processes_with(marker: str) -> list[int]:
    """Host processes whose command line contains `marker` (the prompt of a test's job)."""
    found = []
    for proc in Path("/proc").iterdir():
        if not proc.name.isdigit():
            continue
        try:
            cmdline = (proc / "cmdline").read_bytes()
        except OSError:
            continue
        if marker.encode() in cmdline:
            found.append(int(proc.name))
    return found


@pytest.fixture
def git_repo(tmp_path: Path) -> Path:
    """A git repository with one committed file, app.py."""
    return make_repo(tmp_path / "repo", {"app.py": "GREETING = 'hello'\n"})
