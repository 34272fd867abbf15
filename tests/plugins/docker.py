"""Docker fixtures: tests that need the engine skip locally without one but fail in CI.

For everyone's tests:
- `docker_client`: a docker-py client (session).
- `sandbox_image`: the tag of the sandbox image built from the project's Dockerfile through
  the real code path (`SandboxManager.resolve_image`), once per run; a cache hit when it exists.
- `docker_options(sandbox_image, **overrides)`: DockerOptions keys for a test job in that
  image with `network: host`, so claude inside reaches the scripted model on 127.0.0.1, and
  `keep_warm: 0` (warm sandboxes are opted into by their own tests).
- `no_leaked_containers`: fails the test that leaves a managed container behind.

Everything the manager makes during a run carries the label `io.channelcoder.test-run=<id>`
(through CHANNELCODER_DOCKER_LABELS); at the end of the session containers and images with it
are removed, except the sandbox image itself (a content-keyed cache, reused by the next run).
"""

from __future__ import annotations

import contextlib
import os
import time
import uuid
from collections.abc import Iterator
from typing import Any

import pytest

RUN_ID = uuid.uuid4().hex[:10]
RUN_LABEL = "io.channelcoder.test-run"
MANAGED = "io.channelcoder.managed"
LABELS_ENV = "CHANNELCODER_DOCKER_LABELS"
_keep_images: set[str] = set()


def run_filter() -> dict[str, str]:
    return {"label": f"{RUN_LABEL}={RUN_ID}"}


def run_containers(client: Any) -> set[str]:
    """The ids of every container (running or not) this test run's managers made."""
    return {c["Id"] for c in client.api.containers(all=True, filters=run_filter())}


def wait_until(predicate: Any, what: str, guard: float = 60.0) -> None:
    """Poll `predicate` every 50 ms; fail naming `what` after `guard` seconds."""
    deadline = time.monotonic() + guard
    while not predicate():
        assert time.monotonic() < deadline, f"{what} did not happen within {guard:g} s"
        time.sleep(0.05)


def job_ran_its_tool(notifications: Any, job_id: str) -> bool:
    """Has the language server sent a tool result of `job_id` (channelcoder/event)?"""
    return any(n["method"] == "channelcoder/event" and n["params"]["jobId"] == job_id
               and n["params"]["event"]["type"] == "tool-result" for n in list(notifications))


def _connect() -> Any:
    import docker

    client = docker.from_env(timeout=30)
    client.ping()
    return client


@pytest.fixture(autouse=True, scope="session")
def _docker_run_labels() -> Iterator[None]:
    """Label everything this run's managers make, so it can be found and pruned."""
    saved = os.environ.get(LABELS_ENV)
    os.environ[LABELS_ENV] = f"{RUN_LABEL}={RUN_ID}"
    yield
    if saved is None:
        os.environ.pop(LABELS_ENV, None)
    else:
        os.environ[LABELS_ENV] = saved


@pytest.fixture(scope="session")
def docker_client() -> Iterator[Any]:
    """A docker-py client for the engine `make engine` made available."""
    try:
        client = _connect()
    except Exception as exc:
        message = f"no Docker engine answers ({exc}); run 'make engine'"
        if os.environ.get("CI"):
            pytest.fail(message)
        pytest.skip(message)
    yield client
    prune_run(client)


def prune_run(client: Any) -> None:
    """Remove this run's containers and images (not the sandbox image)."""
    for container in client.api.containers(all=True, filters=run_filter()):
        with contextlib.suppress(Exception):
            client.api.remove_container(container["Id"], force=True)
    for image in client.images.list(filters=run_filter()):
        if set(image.tags) & _keep_images or image.id in _keep_images:
            continue
        with contextlib.suppress(Exception):
            client.images.remove(image.id, force=True)


def managed_containers(client: Any) -> set[str]:
    """Ids of this run's containers (the low-level list: no per-container inspect, which
    races with the engine removing an exited sandbox)."""
    return {c["Id"] for c in client.api.containers(all=True, filters=run_filter())}


@pytest.fixture
def no_leaked_containers(docker_client: Any) -> Iterator[None]:
    """Fail the test that leaves one of this run's containers behind (after a short grace:
    the engine removes an exited sandbox by itself)."""
    before = managed_containers(docker_client)
    yield
    deadline = time.monotonic() + 5
    leaked = managed_containers(docker_client) - before
    while leaked and time.monotonic() < deadline:
        time.sleep(0.1)
        leaked = managed_containers(docker_client) - before
    for cid in leaked:
        with contextlib.suppress(Exception):
            docker_client.api.remove_container(cid, force=True)
    assert not leaked, f"the test leaked {len(leaked)} sandbox container(s)"


@pytest.fixture(scope="session")
def sandbox_image(docker_client: Any, tmp_path_factory: pytest.TempPathFactory) -> str:
    """The sandbox image from the project's Dockerfile, through the real resolution code."""
    import anyio

    from channelcoder.config import DockerOptions
    from channelcoder.sandbox.image.resolve import ResolvedImage
    from channelcoder.sandbox.manager import SandboxManager

    workspace = tmp_path_factory.mktemp("sandbox-image-ws")

    async def resolve() -> ResolvedImage:
        manager = SandboxManager()
        found: ResolvedImage | None = None
        async for item in manager.resolve_image(DockerOptions(), workspace):
            if isinstance(item, ResolvedImage):
                found = item
        assert found is not None
        return found

    try:
        resolved = anyio.run(resolve)
    except Exception as exc:
        pytest.fail(f"the sandbox image could not be built: {exc}")
    _keep_images.add(resolved.ref)
    _keep_images.add(resolved.image_id)
    return resolved.ref


def docker_options(image: str, **overrides: Any) -> dict[str, Any]:
    """Docker options for a test job: the sandbox image, the default network mode (the egress
    proxy, whose upstream is the scripted model on loopback).

    `keep_warm` is 0 unless a test asks for warm sandboxes (tests/warm/): a named session's
    warm container outlives its job by design, and every other test checks the one-shot path.
    """
    return {"image": image, "keep_warm": 0, **overrides}
