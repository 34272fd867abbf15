"""The connection to the Docker engine: two docker-py clients and one way to call them.

`api` is for short calls (60 s socket timeout); `stream_api` has no timeout, for streams that
may stay quiet for minutes (a build's `npm install`, an attached claude thinking). Every call
runs in a worker thread (docker-py blocks) and engine failures become `DockerUnavailable` or
`SandboxError` with a hint, never a docker-py traceback.
"""

from __future__ import annotations

import functools
import os
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, TypeVar

import anyio

from ..errors import DockerUnavailable, SandboxError

T = TypeVar("T")
DEFAULT_SOCKET = "unix:///var/run/docker.sock"
CALL_TIMEOUT = 60


@dataclass
class Engine:
    api: Any
    stream_api: Any
    host: str

    def version(self) -> dict[str, Any]:
        return dict(self.api.version())


def docker_host() -> str:
    return os.environ.get("DOCKER_HOST") or DEFAULT_SOCKET


def unreachable(reason: object) -> DockerUnavailable:
    host = os.environ.get("DOCKER_HOST")
    where = f"DOCKER_HOST={host}" if host else f"the default socket {DEFAULT_SOCKET} (DOCKER_HOST is not set)"
    text = str(reason)
    for marker in ("Error while fetching server API version: ", "('Connection aborted.', "):
        text = text.replace(marker, "")
    return DockerUnavailable(
        f"cannot reach the Docker engine at {where}: {text.strip('()')}",
        hint="start Docker (e.g. 'sudo systemctl start docker' or 'make engine'), point DOCKER_HOST "
             "at a running engine, or run without --docker to use the host's claude",
    )


def connect() -> Engine:
    """Connect to the engine DOCKER_HOST (or the Docker CLI's context) names. Blocking."""
    import docker
    from docker.errors import DockerException

    try:
        client = docker.from_env(timeout=CALL_TIMEOUT)
        version = client.api.api_version
        stream = docker.from_env(timeout=None, version=version)  # type: ignore[arg-type]
    except DockerException as exc:
        raise unreachable(exc) from exc
    base = str(client.api.base_url)
    return Engine(api=client.api, stream_api=stream.api,
                  host=docker_host() if base.startswith("http+docker://") else base)


def translate(exc: BaseException, doing: str) -> Exception:
    """A docker-py / requests failure as a ChannelCoderError (or the original if unrelated)."""
    import requests
    from docker.errors import APIError, DockerException, NotFound

    if isinstance(exc, requests.exceptions.ConnectionError):
        return unreachable(exc)
    if isinstance(exc, NotFound):
        return SandboxError(f"{doing}: {explain(exc)}")
    if isinstance(exc, APIError):
        return SandboxError(f"{doing}: {explain(exc)}",
                            hint="check the Docker engine ('docker info') and try again")
    if isinstance(exc, DockerException):
        return unreachable(exc)
    return exc if isinstance(exc, Exception) else RuntimeError(str(exc))


def explain(exc: Any) -> str:
    """The engine's own words for an APIError, without docker-py's request details."""
    text = getattr(exc, "explanation", None) or str(exc)
    return str(text).strip()


async def call(doing: str, fn: Callable[..., T], *args: Any, abandon: bool = True,
               **kwargs: Any) -> T:
    """Run a blocking docker-py call in a worker thread; failures are translated.

    `abandon=False` is for calls that create something (a container): cancelling waits for
    the call to return so that the caller can clean up what it made.
    """
    try:
        return await anyio.to_thread.run_sync(functools.partial(fn, *args, **kwargs),
                                              abandon_on_cancel=abandon)
    except Exception as exc:
        translated = translate(exc, doing)
        if translated is exc:
            raise
        raise translated from exc


def is_not_found(exc: BaseException) -> bool:
    from docker.errors import NotFound

    return isinstance(exc, NotFound) or isinstance(exc.__cause__, NotFound)
