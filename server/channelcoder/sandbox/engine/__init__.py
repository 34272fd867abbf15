"""The connection to the Docker engine: two clients and one way to call them.

`api` is for short calls (60 s socket timeout); `stream_api` has no timeout, for streams that
may stay quiet for minutes (an attached claude thinking, the engine's event stream). Both are
`EngineAPI` (stdlib HTTP, see api.py); `builder()` is a docker-py client, made only
when an image must be built (for an ssh:// engine it talks to a local socket whose
connections are carried by ours, see ssh.py). Every call runs in a worker thread (they
block) and engine failures become `DockerUnavailable` or `SandboxError` with a hint, never a traceback.
"""

from __future__ import annotations

import functools
import os
import sys
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, TypeVar

import anyio

from ...errors import DockerUnavailable, SandboxError
from .address import DEFAULT_HOST, MAX_API_VERSION, EngineConfigError, engine_address, pinned_api_version
from .api import EngineAPI, EngineError, NotFound, transport
from .http import EngineClosed

T = TypeVar("T")
CALL_TIMEOUT = 60


@dataclass
class Engine:
    api: EngineAPI
    stream_api: EngineAPI
    host: str
    _builder: Any = field(default=None, repr=False)
    _forward: Any = field(default=None, repr=False)

    def version(self) -> dict[str, Any]:
        return dict(self.api.version())

    @property
    def transport(self) -> str:
        """unix socket, tcp, tcp+tls or ssh."""
        return transport(self.api.base_url, self.api.address.tls is not None)

    def describe_version(self) -> str:
        """The API version spoken, and why (pinned, or negotiated with the engine)."""
        spoken = self.api.api_version
        if self.api.pinned:
            return f"API {spoken}, pinned by DOCKER_API_VERSION"
        return (f"API {spoken}, negotiated (engine {self.api.engine_api_version or '?'}, "
                f"client up to {MAX_API_VERSION})")

    def builder(self) -> Any:
        """A docker-py APIClient (no timeout) for `build`: its context tarring honours
        .dockerignore and it sends the registry credentials of ~/.docker/config.json."""
        if self._builder is None:
            import docker

            if self.transport == "ssh":
                from .ssh import LocalForward

                self._forward = LocalForward(self.stream_api.open_connection)
                self._builder = docker.APIClient(
                    base_url=self._forward.url, version=self.api.api_version,
                    timeout=None)  # type: ignore[arg-type]
                return self._builder
            address = self.api.address
            tls: Any = False
            if address.tls is not None:
                from docker.tls import TLSConfig

                files = address.tls
                tls = TLSConfig(
                    client_cert=(str(files.cert), str(files.key)) if files.cert and files.key
                    else None, ca_cert=str(files.ca) if files.ca else None, verify=files.verify)
            base = self.api.base_url.replace("https://", "tcp://").replace("http://", "tcp://")
            self._builder = docker.APIClient(base_url=base, version=self.api.api_version,
                                             timeout=None, tls=tls)  # type: ignore[arg-type]
            if tls:  # requests would let REQUESTS_CA_BUNDLE replace the engine's own CA
                self._builder.trust_env = False
        return self._builder


def unreachable(reason: object) -> DockerUnavailable:
    host = os.environ.get("DOCKER_HOST")
    where = f"DOCKER_HOST={host}" if host else f"the default socket {DEFAULT_HOST} (DOCKER_HOST is not set)"
    from .ssh import SSHFailed  # here: ssh's imports are not every run's

    if isinstance(reason, SSHFailed):
        return DockerUnavailable(f"cannot reach the Docker engine at {where}: {reason}",
                                 hint=reason.hint)
    text = describe(reason)
    for marker in ("Error while fetching server API version: ", "('Connection aborted.', "):
        text = text.replace(marker, "")
    return DockerUnavailable(
        f"cannot reach the Docker engine at {where}: {text.strip('()')}",
        hint="start Docker (e.g. 'sudo systemctl start docker' or 'make engine'), point DOCKER_HOST "
             "at a running engine, or run without --docker to use the host's claude",
    )


def describe(reason: object) -> str:
    """A connection failure in a few words (no errno tuples)."""
    if isinstance(reason, FileNotFoundError):
        return "no engine socket there"
    if isinstance(reason, ConnectionRefusedError):
        return "connection refused"
    if isinstance(reason, PermissionError):
        return "permission denied on the engine socket (is your user in the 'docker' group?)"
    if isinstance(reason, TimeoutError | EngineClosed):
        return "the engine did not answer"
    if isinstance(reason, OSError) and reason.strerror:
        return str(reason.strerror).lower()
    return str(reason)


def connect() -> Engine:
    """Connect to the engine DOCKER_HOST (or the Docker CLI's context) names. Blocking."""
    try:
        address = engine_address()
        api = EngineAPI(address, timeout=CALL_TIMEOUT, version=pinned_api_version())
        version = api.api_version
        stream = EngineAPI(address, timeout=None, version=version)
    except EngineConfigError as exc:
        raise DockerUnavailable(str(exc), hint="set DOCKER_HOST to a unix://, tcp:// or ssh:// "
                                               "engine address (or unset it for the default "
                                               "socket), and DOCKER_API_VERSION to a version "
                                               "like 1.41 or not at all") from exc
    except (OSError, EngineError, ValueError, KeyError) as exc:
        raise unreachable(exc) from exc
    host = os.environ.get("DOCKER_HOST") or api.address.url
    return Engine(api=api, stream_api=stream, host=host)


def translate(exc: BaseException, doing: str) -> Exception:
    """An engine failure as a ChannelCoderError (or the original if unrelated)."""
    not_found: tuple[type[BaseException], ...] = (NotFound,)
    refused: tuple[type[BaseException], ...] = (EngineError,)
    unreachable_errors: tuple[type[BaseException], ...] = (OSError,)
    if "docker" in sys.modules:  # docker-py, used for image builds
        import requests
        from docker.errors import APIError, DockerException
        from docker.errors import NotFound as DockerNotFound

        not_found += (DockerNotFound,)
        refused += (APIError,)
        unreachable_errors += (requests.exceptions.ConnectionError, DockerException)
    if isinstance(exc, not_found):
        return SandboxError(f"{doing}: {explain(exc)}")
    if isinstance(exc, refused):
        return SandboxError(f"{doing}: {explain(exc)}",
                            hint="check the Docker engine ('docker info') and try again")
    if isinstance(exc, unreachable_errors):
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
    return isinstance(exc, NotFound) or isinstance(exc.__cause__, NotFound)
