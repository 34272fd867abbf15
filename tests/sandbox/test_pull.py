"""Pulling images from a real registry: Debian's docker-registry on 127.0.0.1 (the engine
treats 127.0.0.0/8 registries as plain HTTP by default), started per module with its own
config and storage in tmp. An image FROM the sandbox image is pushed to it and removed
locally; jobs then pull it as `docker.pull` says. Every image a test pulls is removed at the
end of that test (they also carry this run's label, as the pushed image did)."""

from __future__ import annotations

import contextlib
import io
import json
import os
import socket
import subprocess
import sys
import tarfile
import threading
import time
import urllib.error
import urllib.request
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import anyio
import pytest

from channelcoder.claude.events import AnyEvent, Error, Result, Status
from channelcoder.config import DockerOptions
from channelcoder.sandbox.image.resolve import ResolvedImage
from channelcoder.sandbox.manager import SandboxManager
from channelcoder.testing.fake_anthropic import Reply, ToolCall
from tests.plugins.docker import RUN_ID, RUN_LABEL, docker_options

from .helpers import (
    HANG_GUARD,
    collect,
    ensure_debian_packages,
    final,
    job,
    tool_outputs,
)

pytestmark = [pytest.mark.docker, pytest.mark.timeout(600)]
MARKER = f"pulled-from-the-registry-{RUN_ID}"
PACKAGES = {"docker-registry": "docker-registry", "htpasswd": "apache2-utils"}


@pytest.fixture(scope="module")
def registry_tools() -> None:
    """Debian's registry and htpasswd, installed when absent (as root, like scripts/engine.sh)."""
    ensure_debian_packages(PACKAGES, "the registry tests")


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


@dataclass
class Registry:
    host: str
    process: subprocess.Popen[bytes]
    log: Path

    def ref(self, name: str) -> str:
        return f"{self.host}/channelcoder-test/{name}"

    def manifest_requests(self) -> int:
        return self.log.read_text(errors="replace").count("/manifests/")

    def stop(self) -> None:
        self.process.terminate()
        try:
            self.process.wait(10)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait(10)


def start_registry(directory: Path, storage: Path, htpasswd: Path | None = None) -> Registry:
    """A registry on 127.0.0.1:<free port> serving `storage` (two may share one)."""
    directory.mkdir(parents=True, exist_ok=True)
    host = f"127.0.0.1:{_free_port()}"
    auth = (f"auth:\n  htpasswd:\n    realm: channelcoder-test\n    path: {htpasswd}\n"
            if htpasswd else "")
    config = directory / "config.yml"
    config.write_text(f"""version: 0.1
log:
  level: info
  accesslog:
    disabled: false
storage:
  filesystem:
    rootdirectory: {storage}
  delete:
    enabled: true
http:
  addr: {host}
  secret: channelcoder-test-{RUN_ID}
{auth}""")
    log = directory / "registry.log"
    with log.open("wb") as out:
        process = subprocess.Popen(["docker-registry", "serve", str(config)], stdout=out,
                                   stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                                   start_new_session=True)
    registry = Registry(host, process, log)
    deadline = time.monotonic() + 30
    while True:
        try:
            urllib.request.urlopen(f"http://{host}/v2/", timeout=2).close()
            return registry
        except urllib.error.HTTPError:
            return registry  # 401 from an auth registry: it answers
        except OSError:
            if process.poll() is not None or time.monotonic() > deadline:
                registry.stop()
                raise RuntimeError(f"the registry did not start: {log.read_text()[-2000:]}") \
                    from None
            time.sleep(0.1)


def layer_blob(registry: Registry, storage: Path, ref: str) -> Path:
    """The file in the registry's storage holding the first layer of `ref`."""
    repository, _, tag = ref.removeprefix(f"{registry.host}/").rpartition(":")
    request = urllib.request.Request(
        f"http://{registry.host}/v2/{repository}/manifests/{tag}",
        headers={"Accept": "application/vnd.docker.distribution.manifest.v2+json"})
    with urllib.request.urlopen(request, timeout=10) as answer:
        digest = str(json.loads(answer.read())["layers"][0]["digest"]).split(":")[1]
    return storage / "docker/registry/v2/blobs/sha256" / digest[:2] / digest / "data"


@pytest.fixture(scope="module")
def registry_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("registry")


@pytest.fixture(scope="module")
def registry(registry_tools: None, registry_dir: Path) -> Iterator[Registry]:
    started = start_registry(registry_dir / "plain", registry_dir / "storage")
    yield started
    started.stop()


@pytest.fixture(autouse=True)
def _own_docker_config(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """No test reads the machine's ~/.docker/config.json (a credsStore there would be asked)."""
    config = tmp_path / "docker-config"
    config.mkdir()
    monkeypatch.setenv("DOCKER_CONFIG", str(config))
    monkeypatch.delenv("DOCKER_AUTH_CONFIG", raising=False)
    return config


def remove_image(client: Any, ref: str) -> None:
    from docker.errors import ImageNotFound

    with contextlib.suppress(ImageNotFound):
        client.images.remove(ref, force=True)


def image_exists(client: Any, ref: str) -> bool:
    from docker.errors import ImageNotFound

    try:
        client.images.get(ref)
    except ImageNotFound:
        return False
    return True


def push(client: Any, ref: str, auth: dict[str, str] | None = None) -> None:
    repository, _, tag = ref.rpartition(":")
    for line in client.api.push(repository, tag, stream=True, decode=True, auth_config=auth):
        assert "error" not in line, line


def build_and_push(client: Any, ref: str, dockerfile: str, files: dict[str, bytes]) -> None:
    """Build `dockerfile` (labelled with this run) as `ref`, push it, and drop it locally."""
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w") as tar:
        for name, data in {"Dockerfile": dockerfile.encode(), **files}.items():
            info = tarfile.TarInfo(name)
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))
    buffer.seek(0)
    for line in client.api.build(fileobj=buffer, custom_context=True, tag=ref, decode=True,
                                 rm=True, labels={RUN_LABEL: RUN_ID}):
        assert "error" not in line, line
    push(client, ref)
    remove_image(client, ref)


@pytest.fixture(scope="module")
def pushed(docker_client: Any, sandbox_image: str, registry: Registry) -> Iterator[str]:
    """An image FROM the sandbox image with one small layer of its own, in the registry only."""
    ref = registry.ref(f"sandbox:{RUN_ID}")
    build_and_push(docker_client, ref, f"FROM {sandbox_image}\nCOPY marker /etc/pull-marker\n",
                   {"marker": MARKER.encode()})
    yield ref
    remove_image(docker_client, ref)


@pytest.fixture
def pulled(docker_client: Any) -> Iterator[list[str]]:
    """The refs a test pulls: absent before it, removed (and checked gone) after it."""
    refs: list[str] = []
    yield refs
    for ref in refs:
        remove_image(docker_client, ref)
        assert not image_exists(docker_client, ref), ref


@pytest.fixture
def workspace(tmp_path: Path) -> Path:
    ws = tmp_path / "ws"
    ws.mkdir()
    return ws


def pull_statuses(events: list[AnyEvent]) -> list[str]:
    return [e.message for e in events if isinstance(e, Status) and e.phase == "pulling-image"]


async def resolve(options: DockerOptions, workspace: Path) -> tuple[list[str], ResolvedImage]:
    messages: list[str] = []
    found: ResolvedImage | None = None
    with anyio.fail_after(HANG_GUARD):
        async for item in SandboxManager.shared().resolve_image(options, workspace):
            if isinstance(item, ResolvedImage):
                found = item
            elif item.phase == "pulling-image":
                messages.append(item.message)
    assert found is not None
    return messages, found


# ---------------------------------------------------------------------------------------------


async def test_a_missing_image_is_pulled_with_progress_and_the_job_runs_in_it(
        scripted: Any, docker_client: Any, registry: Registry, pushed: str,
        pulled: list[str], workspace: Path) -> None:
    pulled.append(pushed)
    assert not image_exists(docker_client, pushed)
    scripted([ToolCall("Bash", {"command": "cat /etc/pull-marker"}), Reply("read it")])
    events = await collect(job("what does the marker say", workspace, docker_options(pushed)))
    result = final(events)
    assert isinstance(result, Result) and result.ok, result
    assert tool_outputs(events)[0].output.strip() == MARKER
    statuses = pull_statuses(events)
    assert statuses[0] == f"pulling {pushed} from {registry.host}"
    assert any(s.startswith(f"pulling {pushed} — layer ") for s in statuses), statuses
    assert statuses[-1].startswith(f"pulled {pushed} in "), statuses
    phases = [e.phase for e in events if isinstance(e, Status)]
    assert phases.index("pulling-image") < phases.index("starting-sandbox")
    labels = docker_client.images.get(pushed).labels
    assert labels.get(RUN_LABEL) == RUN_ID  # the run's prune would find it too


async def test_pull_never_with_the_image_absent_is_a_clear_error_and_nothing_is_pulled(
        docker_client: Any, registry: Registry, pushed: str, pulled: list[str],
        workspace: Path) -> None:
    pulled.append(pushed)
    remove_image(docker_client, pushed)
    asked = registry.manifest_requests()
    events = await collect(job("hi", workspace, docker_options(pushed, pull="never")))
    error = final(events)
    assert isinstance(error, Error) and error.code == "image"
    assert error.message == (f"the image {pushed} does not exist on this Docker engine, and "
                             "docker.pull is \"never\"")
    assert f"docker pull {pushed}" in error.hint and "--pull missing" in error.hint
    assert pull_statuses(events) == []
    assert not image_exists(docker_client, pushed)
    assert registry.manifest_requests() == asked


async def test_an_unknown_image_is_a_clear_error_quoting_the_registry(
        registry: Registry, workspace: Path) -> None:
    ref = registry.ref(f"never-pushed:{RUN_ID}")
    events = await collect(job("hi", workspace, docker_options(ref)))
    error = final(events)
    assert isinstance(error, Error) and error.code == "pull-failed"
    assert error.message.startswith(f"pulling {ref} failed: ")
    assert "manifest unknown" in error.message
    assert "check the image name" in error.hint and f"docker login {registry.host}" in error.hint
    assert 'docker.pull = "never"' in error.hint


async def test_an_unreachable_registry_says_so(workspace: Path, registry_tools: None) -> None:
    ref = f"127.0.0.1:{_free_port()}/channelcoder-test/x:1"
    events = await collect(job("hi", workspace, docker_options(ref)))
    error = final(events)
    assert isinstance(error, Error) and error.code == "pull-failed"
    assert "connection refused" in error.message
    assert "cannot be reached" in error.hint


async def test_pull_always_pulls_once_per_process(
        docker_client: Any, registry: Registry, pushed: str, pulled: list[str],
        workspace: Path) -> None:
    """A second reference to the same image, pushed by this test, is pulled by the first
    resolution of the process even though it is present, and not by the next ones."""
    ref = registry.ref(f"always:{RUN_ID}")
    pulled += [pushed, ref]
    await resolve(DockerOptions(image=pushed, pull="missing"), workspace)
    docker_client.images.get(pushed).tag(ref)
    push(docker_client, ref)
    assert image_exists(docker_client, ref)
    asked = registry.manifest_requests()
    resolver = SandboxManager.shared().resolver(SandboxManager.shared().engine_blocking(),
                                                DockerOptions())
    always = DockerOptions(image=ref, pull="always")
    assert resolver.ready_blocking(always, workspace, trusted=False) is None  # no head start
    first, resolved = await resolve(always, workspace)
    assert first[0] == f"pulling {ref} from {registry.host}"
    assert first[-1] == f"{ref} is up to date"
    assert resolved.ref == ref and registry.manifest_requests() > asked
    asked = registry.manifest_requests()
    again, _ = await resolve(always, workspace)
    assert again == [] and registry.manifest_requests() == asked
    ready = resolver.ready_blocking(always, workspace, trusted=False)
    assert ready is not None and ready.image_id == resolved.image_id


async def test_a_registry_failing_mid_pull_is_a_clear_error(
        docker_client: Any, registry: Registry, registry_dir: Path, pulled: list[str],
        workspace: Path) -> None:
    """The engine has begun (200, progress lines) when the layer turns out to be gone: the
    failure arrives as an error line in the stream."""
    ref = registry.ref(f"broken:{RUN_ID}")
    pulled.append(ref)
    build_and_push(docker_client, ref, "FROM scratch\nCOPY blob /blob\n",
                   {"blob": os.urandom(64 << 10)})
    layer_blob(registry, registry_dir / "storage", ref).unlink()
    events = await collect(job("hi", workspace, docker_options(ref)))
    error = final(events)
    assert isinstance(error, Error) and error.code == "pull-failed", error
    assert any(" — layer " in status for status in pull_statuses(events))  # it had begun
    assert error.message == f"pulling {ref} failed: unknown blob"
    assert f"{registry.host} is missing part of the image" in error.hint
    assert not image_exists(docker_client, ref)


async def test_a_dockerfile_base_is_pulled_when_missing_and_never_is_refused(
        docker_client: Any, registry: Registry, pushed: str, pulled: list[str],
        workspace: Path) -> None:
    pulled.append(pushed)
    remove_image(docker_client, pushed)
    (workspace / "Dockerfile.sandbox").write_text(
        f"ARG BASE={pushed}\nFROM $BASE\n# channelcoder: sandbox\nLABEL test.dockerfile={RUN_ID}\n")
    options = DockerOptions(dockerfile="Dockerfile.sandbox", pull="never")
    asked = registry.manifest_requests()
    with pytest.raises(Exception) as info:
        await resolve(options, workspace)
    assert getattr(info.value, "code", "") == "image"
    assert f"builds FROM {pushed}, which is not on this Docker engine" in str(info.value)
    assert registry.manifest_requests() == asked
    messages, resolved = await resolve(DockerOptions(dockerfile="Dockerfile.sandbox"), workspace)
    assert resolved.built
    assert messages[0] == f"pulling {pushed} (the base image)"
    assert any(m.startswith(f"pulling {pushed} — layer ") for m in messages), messages
    assert image_exists(docker_client, pushed)
    assert docker_client.images.get(resolved.ref).labels.get(RUN_LABEL) == RUN_ID


# ---------------------------------------------------------------------------------------------
# Registry credentials


@pytest.fixture(scope="module")
def auth_registry(registry_tools: None, registry_dir: Path,
                  registry: Registry) -> Iterator[tuple[Registry, str, str]]:
    """A second registry over the same storage, behind htpasswd (bcrypt) auth."""
    user, password = "cc-tester", f"pw-{uuid.uuid4().hex}"
    htpasswd = registry_dir / "htpasswd"
    done = subprocess.run(["htpasswd", "-Bbn", user, password], capture_output=True, text=True,
                          check=True, timeout=60)
    htpasswd.write_text(done.stdout)
    started = start_registry(registry_dir / "auth", registry_dir / "storage", htpasswd)
    yield started, user, password
    started.stop()


def write_auths(config: Path, host: str, user: str, password: str) -> str:
    import base64

    encoded = base64.b64encode(f"{user}:{password}".encode()).decode()
    (config / "config.json").write_text(json.dumps({"auths": {host: {"auth": encoded}}}))
    return encoded


async def test_an_auth_registry_needs_the_docker_config_credentials(
        docker_client: Any, auth_registry: tuple[Registry, str, str], pushed: str,
        pulled: list[str], workspace: Path, _own_docker_config: Path) -> None:
    registry, user, _ = auth_registry
    ref = pushed.replace(pushed.split("/")[0], registry.host, 1)
    pulled += [ref, pushed]
    remove_image(docker_client, pushed)
    events = await collect(job("hi", workspace, docker_options(ref)))
    error = final(events)
    assert isinstance(error, Error) and error.code == "pull-failed"
    assert "no basic auth credentials" in error.message
    assert f"log in first: docker login {registry.host}" in error.hint
    write_auths(_own_docker_config, registry.host, user, "not-the-password")
    events = await collect(job("hi", workspace, docker_options(ref)))
    error = final(events)
    assert isinstance(error, Error) and error.code == "pull-failed"
    assert f"were refused: log in again with 'docker login {registry.host}'" in error.hint
    assert not image_exists(docker_client, ref)


async def test_credentials_from_the_docker_config_pull_and_the_password_is_never_shown(
        scripted: Any, docker_client: Any, auth_registry: tuple[Registry, str, str],
        pushed: str, pulled: list[str], workspace: Path, _own_docker_config: Path,
        caplog: pytest.LogCaptureFixture) -> None:
    registry, user, password = auth_registry
    ref = pushed.replace(pushed.split("/")[0], registry.host, 1)
    pulled += [ref, pushed]
    remove_image(docker_client, pushed)
    encoded = write_auths(_own_docker_config, registry.host, user, password)
    secrets = (password, encoded)
    caplog.set_level("DEBUG")
    scripted([ToolCall("Bash", {"command": "cat /etc/pull-marker"}), Reply("read it")])
    events = await collect(job("marker?", workspace, docker_options(ref), verbose=True))
    result = final(events)
    assert isinstance(result, Result) and result.ok, result
    assert tool_outputs(events)[0].output.strip() == MARKER
    statuses = pull_statuses(events)
    assert statuses[0] == (f"pulling {ref} from {registry.host} (credentials from 'auths' in "
                           f"{_own_docker_config / 'config.json'})")
    wire = json.dumps([e.to_json() for e in events])
    for secret in secrets:
        assert secret not in wire and secret not in caplog.text

    remove_image(docker_client, ref)
    remove_image(docker_client, pushed)
    with anyio.fail_after(HANG_GUARD):
        cli = await anyio.run_process(
            [sys.executable, "-m", "channelcoder", "run", "--verbose", "--docker-image", ref,
             "--keep-warm", "0", "-p", "marker again?"],
            cwd=workspace, env=dict(os.environ), check=False)
    stdout, stderr = cli.stdout.decode(), cli.stderr.decode()
    assert cli.returncode == 0, stderr
    assert f"· pulling {ref} from {registry.host}" in stderr
    assert f"· pulled {ref} in " in stderr
    assert "docker run " in stderr  # --verbose showed the command line
    for secret in secrets:
        assert secret not in stdout and secret not in stderr


# ---------------------------------------------------------------------------------------------
# Cancel


@dataclass
class ThrottlingProxy:
    """127.0.0.1:<port> -> the registry, the registry's answers slowed to `rate` bytes/s."""

    upstream: str
    rate: int
    port: int = 0
    sent: int = 0
    open: int = 0
    _sockets: list[socket.socket] = field(default_factory=list)
    _lock: threading.Lock = field(default_factory=threading.Lock)

    def start(self) -> ThrottlingProxy:
        self._server = socket.create_server(("127.0.0.1", 0))
        self.port = int(self._server.getsockname()[1])
        threading.Thread(target=self._accept, daemon=True).start()
        return self

    def _accept(self) -> None:
        while True:
            try:
                client, _ = self._server.accept()
            except OSError:
                return
            host, port = self.upstream.rsplit(":", 1)
            server = socket.create_connection((host, int(port)))
            with self._lock:
                self._sockets += [client, server]
                self.open += 1
            threading.Thread(target=self._pump, args=(client, server, None), daemon=True).start()
            threading.Thread(target=self._pump, args=(server, client, self._count),
                             daemon=True).start()

    def _count(self, size: int) -> None:
        with self._lock:
            self.sent += size
        time.sleep(size / self.rate)

    def _pump(self, source: socket.socket, target: socket.socket,
              throttle: Callable[[int], None] | None) -> None:
        try:
            while data := source.recv(4096 if throttle else 65536):
                if throttle:
                    throttle(len(data))
                target.sendall(data)
        except OSError:
            pass
        finally:
            for sock in (source, target):
                with contextlib.suppress(OSError):
                    sock.shutdown(socket.SHUT_RDWR)
            if throttle:
                with self._lock:
                    self.open -= 1

    def wait_closed(self, timeout: float) -> bool:
        """Every proxied connection closed (by the engine) within `timeout` seconds."""
        deadline = time.monotonic() + timeout
        while self.open and time.monotonic() < deadline:
            time.sleep(0.05)
        return self.open == 0

    def stop(self) -> None:
        self._server.close()
        with self._lock:
            for sock in self._sockets:
                with contextlib.suppress(OSError):
                    sock.close()


async def test_cancel_during_a_pull_stops_it_promptly(
        docker_client: Any, registry: Registry, pulled: list[str], workspace: Path) -> None:
    ref = registry.ref(f"big:{RUN_ID}")
    build_and_push(docker_client, ref, "FROM scratch\nCOPY blob /blob\n",
                   {"blob": os.urandom(8 << 20)})
    proxy = ThrottlingProxy(registry.host, rate=512 << 10).start()
    slow_ref = ref.replace(registry.host, f"127.0.0.1:{proxy.port}", 1)
    pulled += [ref, slow_ref]
    running = job("hi", workspace, docker_options(slow_ref))
    events: list[AnyEvent] = []
    cancelled_at = 0.0
    try:
        with anyio.fail_after(HANG_GUARD):
            async for event in running.events():
                events.append(event)
                if (isinstance(event, Status) and " MB" in event.message
                        and not cancelled_at):
                    running.cancel()
                    cancelled_at = time.monotonic()
        ended_after = time.monotonic() - cancelled_at
        error = final(events)
        assert cancelled_at, pull_statuses(events)
        assert isinstance(error, Error) and error.code == "cancelled"
        assert ended_after < 5, f"the job took {ended_after:.1f} s to end"
        assert await anyio.to_thread.run_sync(proxy.wait_closed, 10.0), \
            "the engine still downloads after the cancel"
        sent = proxy.sent
        await anyio.sleep(1.0)
        assert proxy.sent == sent and sent < 8 << 20
        assert not image_exists(docker_client, slow_ref)
    finally:
        proxy.stop()


def test_doctor_names_the_pull_policy_and_whose_credentials_a_pull_would_send(
        docker_client: Any, auth_registry: tuple[Registry, str, str], pushed: str,
        workspace: Path, _own_docker_config: Path) -> None:
    from channelcoder.trust import set_trusted

    registry, user, password = auth_registry
    ref = pushed.replace(pushed.split("/")[0], registry.host, 1)
    remove_image(docker_client, ref)
    encoded = write_auths(_own_docker_config, registry.host, user, password)
    (workspace / ".channelcoder").mkdir()
    project = workspace / ".channelcoder" / "config.toml"
    project.write_text(f'[docker]\nimage = "{ref}"\n')
    set_trusted(workspace)

    def doctor() -> list[str]:
        done = subprocess.run([sys.executable, "-m", "channelcoder", "doctor"], cwd=workspace,
                              env=dict(os.environ), capture_output=True, text=True, timeout=120)
        for secret in (password, encoded):
            assert secret not in done.stdout + done.stderr
        return done.stdout.splitlines()

    lines = doctor()
    assert f"ok  image        {ref}: not on this engine yet; the first --docker run pulls it" \
        in lines, lines
    assert (f'ok  pull         docker.pull = "missing": an image missing from the engine is '
            f"pulled from its registry; {registry.host}: credentials from 'auths' in "
            f"{_own_docker_config / 'config.json'}") in lines, lines
    project.write_text(f'[docker]\nimage = "{ref}"\npull = "never"\n')
    lines = doctor()
    assert f"NO  image        {ref} from the image {ref}: not on this engine" in lines, lines
    assert 'ok  pull         docker.pull = "never": images are never pulled; a missing one is ' \
           "an error" in lines, lines


def test_image_build_pull_never_refuses_a_missing_base(
        docker_client: Any, pushed: str, workspace: Path) -> None:
    remove_image(docker_client, pushed)
    (workspace / "Dockerfile.sandbox").write_text(f"FROM {pushed}\n# channelcoder: sandbox\n")
    done = subprocess.run(
        [sys.executable, "-m", "channelcoder", "image", "build", "--pull", "never",
         "--dockerfile", "Dockerfile.sandbox"],
        cwd=workspace, env=dict(os.environ), capture_output=True, text=True, timeout=120)
    assert done.returncode == 1, done.stdout + done.stderr
    assert (f"error: Dockerfile.sandbox builds FROM {pushed}, which is not on this Docker "
            'engine, and docker.pull is "never"') in done.stderr
    assert "hint: pull or load it yourself" in done.stderr
    assert not image_exists(docker_client, pushed)


async def test_a_base_the_build_cannot_pull_is_a_pull_error_naming_it(
        registry: Registry, workspace: Path) -> None:
    base = registry.ref(f"no-such-base:{RUN_ID}")
    (workspace / "Dockerfile.sandbox").write_text(f"FROM {base}\n# channelcoder: sandbox\n")
    with pytest.raises(Exception) as info:
        await resolve(DockerOptions(dockerfile="Dockerfile.sandbox"), workspace)
    assert getattr(info.value, "code", "") == "pull-failed", info.value
    assert str(info.value).startswith(
        f"building the sandbox image from Dockerfile.sandbox: pulling {base} failed: ")
    assert "manifest unknown" in str(info.value)
    assert f"docker login {registry.host}" in getattr(info.value, "hint", "")
