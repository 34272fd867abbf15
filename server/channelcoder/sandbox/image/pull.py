"""Pulling an image from its registry: the `docker.pull` policy, progress and failures.

`pull_image` streams the engine's pull as `Status("pulling-image", ...)` events: the engine's
per-layer lines are folded into one readable line ("pulling host/x:1 — layer 3/5, 12.3/40.1
MB") reported at most every `REPORT_INTERVAL` seconds. Credentials come from the docker CLI's
config (`registry_auth.py`). Cancelling the consumer closes the engine connection, which ends
the pull. A failure is a `PullFailed` quoting the registry's words with a hint.

Policies: `missing` pulls an image the engine does not have, `never` never pulls, `always`
pulls each reference once per process before its first use (`pulled_in_process`).
"""

from __future__ import annotations

import threading
import time
from collections.abc import AsyncIterator, Callable, Iterator, Mapping
from dataclasses import dataclass
from typing import Any, Final

import anyio

from ...claude.events import Status
from ...errors import DockerUnavailable, ImageError, PullFailed
from ...redact import redact
from .. import engine as eng
from ..engine.api import EngineAPI, EngineError
from ..engine.http import Stream
from ..engine.streams import ThreadedIterator
from .registry_auth import find_auth, registry_of

PHASE: Final = "pulling-image"
REPORT_INTERVAL = 0.3
_DONE = ("Pull complete", "Already exists")
_FETCHED = ("Download complete", "Verifying Checksum", "Extracting", "Pull complete")
_NOT_LAYERS = ("Pulling from ", "Digest:", "Status:", "Pulling repository")
_ANNOUNCING = ("Pulling fs layer", "Waiting")

_pulled: set[str] = set()
_pulled_lock = threading.Lock()


def pulled_in_process(ref: str) -> bool:
    with _pulled_lock:
        return ref in _pulled


def mark_pulled(ref: str) -> None:
    with _pulled_lock:
        _pulled.add(ref)


def missing_image(ref: str) -> ImageError:
    """`docker.pull = "never"` and the image is not on the engine."""
    return ImageError(f"the image {ref} does not exist on this Docker engine, and docker.pull "
                      "is \"never\"",
                      hint=f"pull or build it yourself (docker pull {ref}), or allow pulling: "
                           "--pull missing (docker.pull = \"missing\")")


@dataclass
class _Layer:
    current: int = 0
    total: int = 0
    done: bool = False


class PullProgress:
    """Folds the engine's pull lines into one line, at most one report per `interval`."""

    def __init__(self, ref: str, *, interval: float = REPORT_INTERVAL,
                 clock: Callable[[], float] = time.monotonic) -> None:
        self.ref = ref
        self.interval = interval
        self.clock = clock
        self.layers: dict[str, _Layer] = {}
        self.up_to_date = False
        self._moving = False  # the layers are all announced before any moves
        self._last = float("-inf")
        self._reported = self.line()  # the bare "pulling REF" says nothing new

    def feed(self, item: Mapping[str, Any]) -> str | None:
        """Take one engine line; the line to report now, if it is time and something changed."""
        status = str(item.get("status") or "")
        layer_id = item.get("id")
        if status.startswith("Status: Image is up to date"):
            self.up_to_date = True
        if isinstance(layer_id, str) and status and not status.startswith(_NOT_LAYERS):
            layer = self.layers.setdefault(layer_id, _Layer())
            detail = item.get("progressDetail")
            if status == "Downloading" and isinstance(detail, Mapping):
                layer.current = int(detail.get("current") or layer.current)
                layer.total = int(detail.get("total") or layer.total)
            elif status.startswith(_FETCHED) and layer.total:
                layer.current = layer.total
            if status.startswith(_DONE):
                layer.done = True
            self._moving = self._moving or not status.startswith(_ANNOUNCING)
        now = self.clock()
        if not self._moving or now - self._last < self.interval:
            return None
        line = self.line()
        if line == self._reported:
            return None
        self._last, self._reported = now, line
        return line

    def flush(self) -> str | None:
        """The latest line if it was held back (the state at the end of the pull)."""
        line = self.line()
        if line == self._reported:
            return None
        self._reported = line
        return line

    def line(self) -> str:
        if not self.layers:
            return f"pulling {self.ref}"
        done = sum(layer.done for layer in self.layers.values())
        text = f"pulling {self.ref} — layer {done}/{len(self.layers)}"
        total = sum(layer.total for layer in self.layers.values())
        if total:
            current = sum(min(layer.current, layer.total) for layer in self.layers.values())
            text += f", {current / 1e6:.1f}/{total / 1e6:.1f} MB"
        return text


class _PullStream:
    """The engine's pull lines, read in a thread; `close()` from the loop aborts the pull."""

    def __init__(self, api: EngineAPI, ref: str, auth: Mapping[str, str] | None) -> None:
        self.api, self.ref, self.auth = api, ref, auth
        self._stream: Stream[dict[str, Any]] | None = None
        self._closed = False
        self._lock = threading.Lock()

    def items(self) -> Iterator[dict[str, Any]]:
        stream = self.api.pull(self.ref, auth=self.auth)
        with self._lock:
            self._stream = stream
            closed = self._closed
        if closed:
            stream.close()
            return
        try:
            yield from stream
        finally:
            stream.close()

    def close(self) -> None:
        with self._lock:
            self._closed = True
            stream = self._stream
        if stream is not None:
            stream.close()


async def pull_image(engine: eng.Engine, ref: str) -> AsyncIterator[Status]:
    """Pull `ref` (credentials from the docker config), reporting progress. Raises PullFailed
    (or DockerUnavailable) when it fails; marks `ref` pulled in this process when it succeeds."""
    registry = registry_of(ref)
    auth = await anyio.to_thread.run_sync(find_auth, ref, abandon_on_cancel=True)
    source = f" (credentials from {auth.source})" if auth is not None else ""
    yield Status(PHASE, f"pulling {ref} from {registry}{source}")
    progress = PullProgress(ref)
    pull = _PullStream(engine.stream_api, ref, auth.config() if auth is not None else None)
    items: ThreadedIterator[dict[str, Any]] = ThreadedIterator(
        pull.items(), close_source=pull.close, name="channelcoder-pull")
    items.start()
    started = time.monotonic()
    try:
        while True:
            try:
                item = await items.receive()
            except anyio.EndOfStream:
                break
            except Exception as exc:
                raise failure(exc, ref, registry, auth is not None) from exc
            if "error" in item or "errorDetail" in item:
                detail = item.get("errorDetail")
                message = item.get("error") or (detail.get("message")
                                                if isinstance(detail, Mapping) else None)
                raise pull_failed(str(message or "unknown error"), ref, registry,
                                  auth is not None)
            line = progress.feed(item)
            if line is not None:
                yield Status(PHASE, line)
    finally:
        items.close()
    last = progress.flush()
    if last is not None:
        yield Status(PHASE, last)
    mark_pulled(ref)
    took = time.monotonic() - started
    yield Status(PHASE, f"{ref} is up to date" if progress.up_to_date
                 else f"pulled {ref} in {took:.1f} s")


def failure(exc: BaseException, ref: str, registry: str, authenticated: bool) -> Exception:
    """A failed pull request (before any progress) as the user's error."""
    if isinstance(exc, EngineError):
        return pull_failed(exc.explanation, ref, registry, authenticated)
    translated = eng.translate(exc, f"pulling {ref}")
    if isinstance(translated, DockerUnavailable) or translated is exc:
        return translated
    return pull_failed(eng.explain(exc), ref, registry, authenticated)


def pull_failed(message: str, ref: str, registry: str, authenticated: bool) -> PullFailed:
    """The registry's own words, and what to do about them."""
    said = redact(message.strip())
    lower = said.lower()
    fallback = "or set docker.pull = \"never\" (--pull never) and build or load the image yourself"
    if any(word in lower for word in ("unauthorized", "authentication required", "denied",
                                      "no basic auth credentials", "incorrect username")):
        login = (f"your credentials for {registry} were refused: log in again with "
                 f"'docker login {registry}'" if authenticated
                 else f"log in first: docker login {registry}")
        hint = f"check the image name; {login}; {fallback}"
    elif any(word in lower for word in ("connection refused", "no such host", "i/o timeout",
                                        "dial tcp", "tls handshake", "server gave http response",
                                        "network is unreachable", "timeout exceeded")):
        hint = f"the registry {registry} cannot be reached: check that it is up and the " \
               f"address is right, {fallback}"
    elif "unknown blob" in lower or "blob unknown" in lower:
        hint = f"the registry {registry} is missing part of the image: push it again, {fallback}"
    else:
        hint = f"check the image name (docker pull {ref} says the same); if {registry} needs a " \
               f"login: docker login {registry}; {fallback}"
    return PullFailed(f"pulling {ref} failed: {said}", hint=hint)
