"""A non-root user in the `docker` group: files the sandbox writes are theirs, no chmod.

The suite normally runs as root; these tests create a real user (removed afterwards) and run
the real CLI as that user with `setpriv`, against the real engine and sandbox image.

The user cannot be assumed to read this checkout: a clone under a 0700 directory (root's
home, a user's home) hides the venv, its interpreter and the sources from everyone else. So
the user gets a runtime of their own: the channelcoder package and its runtime dependencies
copied into a directory they can read, run by a system interpreter of the same Python version.
"""

from __future__ import annotations

import os
import pwd
import shutil
import stat
import subprocess
import sys
from collections.abc import Iterator
from importlib import metadata
from pathlib import Path, PurePosixPath
from typing import Any

import pytest
from packaging.requirements import Requirement
from packaging.utils import canonicalize_name

import channelcoder
from channelcoder.testing.fake_anthropic import Reply, ToolCall
from tests.plugins.docker import RUN_ID

pytestmark = [pytest.mark.docker,
              pytest.mark.skipif(os.geteuid() != 0, reason="needs root to create a user; as "
                                 "non-root the ownership test in test_sandbox_jobs covers it")]
PASSED_ENV = ("PATH", "ANTHROPIC_BASE_URL", "ANTHROPIC_API_KEY", "CLAUDE_CODE_MAX_RETRIES",
              "CHANNELCODER_DOCKER_LABELS", "DOCKER_HOST", "NODE_EXTRA_CA_CERTS", "SSL_CERT_FILE")
SYSTEM_BIN = "/usr/local/bin:/usr/bin:/bin"


@pytest.fixture
def docker_user(docker_client: Any) -> Iterator[pwd.struct_passwd]:
    name = f"ccsbx{RUN_ID[:6]}"
    subprocess.run(["useradd", "--create-home", "--shell", "/bin/bash", "--groups", "docker",
                    name], check=True, capture_output=True)
    try:
        yield pwd.getpwnam(name)
    finally:
        subprocess.run(["userdel", "--remove", name], capture_output=True)


def as_user(user: pwd.struct_passwd) -> list[str]:
    """The prefix that runs a command as `user`. setpriv still holds root's capabilities when
    it execs, so the command it names is reached even through a 0700 directory; `env` execs
    the command as the user proper."""
    return ["setpriv", f"--reuid={user.pw_uid}", f"--regid={user.pw_gid}", "--init-groups", "--",
            "/usr/bin/env"]


def runtime_distributions() -> list[metadata.Distribution]:
    """channelcoder's installed distribution and, transitively, what it needs at run time
    (no extras of its own: what `pip install channelcoder` brings)."""
    found: dict[str, metadata.Distribution] = {}
    todo: list[tuple[str, frozenset[str]]] = [("channelcoder", frozenset())]
    while todo:
        name, extras = todo.pop()
        key = canonicalize_name(name)
        if key in found and not extras:
            continue
        dist = found.setdefault(key, metadata.distribution(name))
        for text in dist.requires or []:
            wanted = Requirement(text)
            if wanted.marker is None or any(wanted.marker.evaluate({"extra": extra})
                                            for extra in (extras or {""})):
                todo.append((wanted.name, frozenset(wanted.extras)))
    return list(found.values())


def install_runtime(into: Path) -> Path:
    """Copy channelcoder and its runtime dependencies into `into` (an import path)."""
    into.mkdir(parents=True, exist_ok=True)
    for dist in runtime_distributions():
        for name in dist.files or []:
            relative = PurePosixPath(str(name))
            if relative.parts[0] == ".." or relative.suffix == ".pth":
                continue
            source = Path(str(dist.locate_file(name)))
            if source.is_file():
                target = into / relative
                target.parent.mkdir(parents=True, exist_ok=True)
                shutil.copy2(source, target)
    package = Path(channelcoder.__file__).parent
    shutil.copytree(package, into / package.name, dirs_exist_ok=True)
    return into


def python_for(user: pwd.struct_passwd) -> str:
    """An interpreter of this Python version the user can run: this venv's base
    interpreter when the user can reach it, else the system's."""
    version = f"{sys.version_info.major}.{sys.version_info.minor}"
    candidates = [os.path.realpath(sys.executable),
                  shutil.which(f"python{version}", path=SYSTEM_BIN)]
    for candidate in filter(None, candidates):
        probe = subprocess.run([*as_user(user), candidate, "-c",
                                "import sys; print('%d.%d' % sys.version_info[:2])"],
                               capture_output=True, text=True)
        if probe.returncode == 0 and probe.stdout.strip() == version:
            return candidate
    pytest.fail(f"no Python {version} that the user {user.pw_name} can run (tried "
                f"{', '.join(filter(None, candidates))}); install python{version} system-wide")


def run_as(user: pwd.struct_passwd, runtime: Path, cwd: Path, argv: list[str],
           **env: str) -> subprocess.CompletedProcess[str]:
    """`python -m channelcoder argv…` as the user, from `runtime`, with only the environment
    a user's shell would have for the scripted model, the engine and the test's labels."""
    passed = {key: os.environ[key] for key in PASSED_ENV if key in os.environ}
    passed.update(env, PYTHONPATH=str(runtime), HOME=user.pw_dir, USER=user.pw_name)
    return subprocess.run([*as_user(user), python_for(user), "-s", "-m", "channelcoder", *argv],
                          cwd=cwd, env=passed, capture_output=True, text=True, timeout=180)


def script_the_edit(scripted: Any, then: str = "") -> None:
    """The model edits app.py, then runs `id -u`, `then` and writes made/new.txt."""
    scripted([
        ToolCall("Read", {"file_path": "/workspace/app.py"}),
        ToolCall("Edit", {"file_path": "/workspace/app.py", "old_string": "'hello'",
                          "new_string": "'hello from a non-root sandbox'"}),
        ToolCall("Bash", {"command": f"id -u && {then + ' && ' if then else ''}"
                                     "mkdir made && echo x > made/new.txt"}),
        Reply("done"),
    ])


def chown_tree(top: Path, user: pwd.struct_passwd) -> None:
    for root, dirs, files in os.walk(top):
        for name in (root, *(os.path.join(root, d) for d in dirs),
                     *(os.path.join(root, f) for f in files)):
            os.lchown(name, user.pw_uid, user.pw_gid)


def assert_edited_by(ws: Path, user: pwd.struct_passwd, done: subprocess.CompletedProcess[str]) -> None:
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    assert f'"output": "{user.pw_uid}' in done.stdout
    assert (ws / "app.py").read_text() == "GREETING = 'hello from a non-root sandbox'\n"
    for path in (ws / "app.py", ws / "made", ws / "made" / "new.txt"):
        info = path.stat()
        assert (info.st_uid, info.st_gid) == (user.pw_uid, user.pw_gid), path


def test_files_written_in_the_sandbox_belong_to_the_non_root_host_user(
        scripted: Any, sandbox_image: str, docker_user: pwd.struct_passwd) -> None:
    base = Path(f"/tmp/cc-nonroot-{RUN_ID}")
    ws = base / "ws"
    ws.mkdir(parents=True)
    try:
        runtime = install_runtime(base / "runtime")
        (ws / "app.py").write_text("GREETING = 'hello'\n")
        for path in (base, ws, ws / "app.py"):
            os.chown(path, docker_user.pw_uid, docker_user.pw_gid)
        mode_before = stat.S_IMODE(ws.stat().st_mode)
        script_the_edit(scripted)
        done = run_as(docker_user, runtime, ws,
                      ["run", "--docker-image", sandbox_image, "--json",
                       "-p", "edit the greeting"],
                      CHANNELCODER_STATE_DIR=str(base / "state"),
                      CHANNELCODER_CACHE_DIR=str(base / "cache"))
        assert_edited_by(ws, docker_user, done)
        assert stat.S_IMODE(ws.stat().st_mode) == mode_before
    finally:
        shutil.rmtree(base, ignore_errors=True)


def private_home(user: pwd.struct_passwd, files: dict[str, str]) -> tuple[Path, Path]:
    """The user's own install and a project with `files`, all theirs, under their home made
    0700 (`useradd` makes it 0755 here): (the install's import path, the project)."""
    home = Path(user.pw_dir)
    runtime = install_runtime(home / ".local" / "lib" / "channelcoder")
    ws = home / "project"
    for name, text in files.items():
        (ws / name).parent.mkdir(parents=True, exist_ok=True)
        (ws / name).write_text(text)
    chown_tree(home, user)
    home.chmod(0o700)
    return runtime, ws


def test_a_user_with_everything_in_a_private_home_runs_the_bundled_sandbox(
        scripted: Any, sandbox_image: str, docker_user: pwd.struct_passwd) -> None:
    """Their install, project, state and caches all under a 0700 home; the image is the
    bundled one, found from the package's own Dockerfile (the same content key, so the
    image the suite built is a cache hit)."""
    runtime, ws = private_home(docker_user, {"app.py": "GREETING = 'hello'\n"})
    script_the_edit(scripted)
    done = run_as(docker_user, runtime, ws,
                  ["run", "--docker", "--json", "-p", "edit the greeting"])
    assert_edited_by(ws, docker_user, done)
    assert f"starting the sandbox ({sandbox_image}," in done.stdout
    assert "building-image" not in done.stdout
    home = Path(docker_user.pw_dir)
    assert (home / ".local" / "state" / "channelcoder").is_dir()
    assert stat.S_IMODE(home.stat().st_mode) == 0o700


def test_a_private_ca_bundle_in_a_0700_home_reaches_the_sandbox(
        scripted: Any, sandbox_image: str, docker_user: pwd.struct_passwd) -> None:
    """NODE_EXTRA_CA_CERTS naming a 0600 file in the user's 0700 home: the sandbox reads it."""
    system = Path("/etc/ssl/certs/ca-certificates.crt")
    if not system.is_file():
        pytest.skip(f"no system CA bundle at {system} to stand for a private one")
    runtime, ws = private_home(docker_user, {"app.py": "GREETING = 'hello'\n"})
    bundle = Path(docker_user.pw_dir) / "corp.pem"
    shutil.copyfile(system, bundle)
    os.chown(bundle, docker_user.pw_uid, docker_user.pw_gid)
    bundle.chmod(0o600)
    count = bundle.read_text().count("BEGIN CERTIFICATE")
    script_the_edit(scripted, then="grep -c 'BEGIN CERTIFICATE' /channelcoder/ca.crt")
    done = run_as(docker_user, runtime, ws,
                  ["run", "--docker-image", sandbox_image, "--json",
                   "-p", "edit the greeting"],
                  NODE_EXTRA_CA_CERTS=str(bundle))
    assert_edited_by(ws, docker_user, done)
    assert f'"output": "{docker_user.pw_uid}\\n{count}"' in done.stdout, done.stdout[-3000:]


def test_a_workspace_dockerfile_in_a_0700_home_builds_from_its_private_context(
        scripted: Any, sandbox_image: str, docker_user: pwd.struct_passwd) -> None:
    """The user's trusted `.channelcoder/Dockerfile` copies a 0600 file of their project: the
    build context is read as the user, and the job runs in the image built from it."""
    notes = "only mine\n"
    runtime, ws = private_home(docker_user, {
        "notes.txt": notes,
        ".channelcoder/Dockerfile": f"FROM {sandbox_image}\nCOPY notes.txt /opt/notes.txt\n"})
    (ws / "notes.txt").chmod(0o600)
    trusted = run_as(docker_user, runtime, ws, ["trust"])
    assert trusted.returncode == 0, trusted.stderr
    scripted([ToolCall("Bash", {"command": "id -u && stat -c %s /opt/notes.txt"}), Reply("done")])
    done = run_as(docker_user, runtime, ws,
                  ["run", "--docker", "--json", "-p", "size the notes"])
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    assert "from .channelcoder/Dockerfile" in done.stdout
    assert f'"output": "{docker_user.pw_uid}\\n{len(notes)}"' in done.stdout, done.stdout[-3000:]
