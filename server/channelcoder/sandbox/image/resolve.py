"""Which image a sandbox runs: find the Dockerfile, key it by content, build on a miss, probe claude.

Discovery: `image` > `dockerfile` > `.channelcoder/Dockerfile` > `./Dockerfile`
when it installs the Claude CLI > the bundled default. A workspace Dockerfile is only used in a
trusted workspace. A named image is pulled as `docker.pull` says (`pulling.py`); a build's
FROM images are pulled by the builder, or checked first when pulling is off. The tag is
`channelcoder-auto:<12 hex>` of the content key (`cachekey.py`); a cache hit is one `inspect`
call and never calls build. Builds stream every log line as a `Status` and run one at a time
per tag (a lock file). The first use of an image runs `claude --version` in it once; the answer
is kept by image id.
"""

from __future__ import annotations

import contextlib
import io
import os
import re
import time
from collections.abc import AsyncIterator, Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

import anyio

from ...claude.events import Status
from ...config import DockerOptions
from ...errors import BuildFailed, ConfigError, DockerUnavailable, ImageError, PullFailed
from ...state import file_lock, read_json, subdir, try_lock, write_json
from .. import engine as eng
from ..engine.api import EngineError, NotFound
from ..engine.proxies import proxy_env
from ..engine.streams import ThreadedIterator
from ..labels import IMAGE_KEY, IMAGE_SOURCE, JOB, MANAGED, owner_labels
from .cachekey import CacheKey, StatMemo, compute_key, mentions_claude
from .pull import PHASE as PULLING
from .pull import PullProgress, missing_image, pull_failed, pull_image, pulled_in_process
from .registry_auth import registry_of

IMAGE_DIR = Path(__file__).parent
BUNDLED_DOCKERFILE = IMAGE_DIR / "Dockerfile"
VERSION_FILE = IMAGE_DIR / "claude-code.version"
_STEP = re.compile(r"^Step \d+/\d+ : ")
_ANSI = re.compile(r"\x1b\[[0-9;]*[A-Za-z]")
_NOISE = (" ---> ", "Removing intermediate container ", "Successfully built ",
          "Successfully tagged ")
_VERSION = re.compile(r"(\d+\.\d+\.\d+\S*)")
_VARIABLE = re.compile(r"\$(?:\{([A-Za-z_][A-Za-z0-9_]*)\}|([A-Za-z_][A-Za-z0-9_]*))")
LOCK_POLL = 0.2
PROBE_TIMEOUT = 120
VERSION_STORE = "claude-versions.json"  # image id -> `claude --version` in it
NODE_STORE = "node-present.json"  # image id -> does `node` run in it


def pinned_claude_version() -> str:
    return VERSION_FILE.read_text(encoding="utf-8").strip()


@dataclass(frozen=True)
class ImageSource:
    kind: Literal["image", "dockerfile", "bundled"]
    origin: str
    image: str | None = None
    dockerfile: Path | None = None
    context: Path | None = None
    notices: tuple[str, ...] = ()


@dataclass
class BuildPlan:
    source: ImageSource
    key: CacheKey
    dockerfile_text: bytes
    build_args: dict[str, str]
    ca_bundle: bytes | None

    @property
    def tag(self) -> str:
        return self.key.tag


@dataclass(frozen=True)
class ResolvedImage:
    ref: str
    image_id: str
    source: ImageSource
    claude_version: str
    built: bool = False
    key: CacheKey | None = field(default=None, compare=False)


# ---------------------------------------------------------------------------------------------
# Discovery


def find_source(options: DockerOptions, workspace: Path, *, trusted: bool) -> ImageSource:
    """Where the image comes from. Pure file checks; no engine."""
    if options.image:
        return ImageSource("image", f"the image {options.image}", image=options.image)
    if options.dockerfile:
        path = Path(options.dockerfile).expanduser()
        path = path if path.is_absolute() else workspace / path
        if not path.is_file():
            raise ConfigError(f"the Dockerfile {options.dockerfile} does not exist",
                              hint="pass an existing file with --dockerfile, or drop it to use "
                                   "the bundled sandbox image")
        return _dockerfile_source(path, workspace, str(options.dockerfile), ())
    notices: list[str] = []
    if options.auto:
        candidates = [(workspace / ".channelcoder" / "Dockerfile", ".channelcoder/Dockerfile"),
                      (workspace / "Dockerfile", "./Dockerfile")]
        for path, origin in candidates:
            if not path.is_file():
                continue
            if origin == "./Dockerfile" and not _installs_claude(path):
                notices.append("./Dockerfile does not install the Claude CLI (no "
                               "@anthropic-ai/claude-code and no '# channelcoder: sandbox' line): "
                               "using the bundled sandbox image")
                continue
            if not trusted and not _is_bundled(path):
                notices.append(f"{origin} is ignored because this workspace is not trusted "
                               "(run 'channelcoder trust'): using the bundled sandbox image")
                break
            return _dockerfile_source(path, workspace, origin, tuple(notices))
    return ImageSource("bundled", "the bundled sandbox image", dockerfile=BUNDLED_DOCKERFILE,
                       notices=tuple(notices))


def _dockerfile_source(path: Path, workspace: Path, origin: str,
                       notices: tuple[str, ...]) -> ImageSource:
    if _is_bundled(path):
        return ImageSource("bundled", "the bundled sandbox image", dockerfile=BUNDLED_DOCKERFILE,
                           notices=notices)
    resolved = path.resolve()
    root = workspace.resolve()
    context = root if resolved.is_relative_to(root) else resolved.parent
    return ImageSource("dockerfile", origin, dockerfile=resolved, context=context, notices=notices)


def _is_bundled(path: Path) -> bool:
    with contextlib.suppress(OSError):
        return path.resolve() == BUNDLED_DOCKERFILE.resolve()
    return False


def _installs_claude(path: Path) -> bool:
    try:
        return mentions_claude(path.read_text(encoding="utf-8", errors="replace"))
    except OSError:
        return False


def ca_bundle_path(setting: str) -> Path | None:
    """The extra CA bundle: `auto` = $SSL_CERT_FILE / $NODE_EXTRA_CA_CERTS, `none`, or a path."""
    if setting in ("", "none", "false"):
        return None
    if setting == "auto":
        for name in ("NODE_EXTRA_CA_CERTS", "SSL_CERT_FILE"):
            value = os.environ.get(name)
            if value and Path(value).is_file():
                return Path(value)
        return None
    path = Path(setting).expanduser()
    if not path.is_file():
        raise ConfigError(f"docker.ca_certificates: {setting} is not a file",
                          hint="name a PEM bundle, or 'auto' / 'none'")
    return path


def plan_build(source: ImageSource, options: DockerOptions, memo: StatMemo) -> BuildPlan:
    """The build's inputs and content key. Blocking (reads and hashes files)."""
    assert source.dockerfile is not None
    try:
        text = source.dockerfile.read_bytes()
    except OSError as exc:
        raise ConfigError(f"cannot read {source.dockerfile}: {exc.strerror or exc}") from exc
    args = {"CLAUDE_CODE_VERSION": pinned_claude_version(), **dict(options.build_args)}
    ca_path = ca_bundle_path(options.ca_certificates)
    ca = ca_path.read_bytes() if ca_path is not None else None
    bundled = source.kind == "bundled"
    key = compute_key(text, context=source.context, build_args=args,
                      ca_bundle=ca if bundled else None, memo=memo,
                      dockerfile_name="bundled" if bundled else source.dockerfile.name,
                      scan_context=not bundled)
    memo.save()
    return BuildPlan(source=source, key=key, dockerfile_text=text, build_args=args,
                     ca_bundle=ca if bundled else None)


def bundled_context(plan: BuildPlan) -> io.BytesIO:
    """The bundled image's build context: its Dockerfile and ca/extra.crt (maybe empty)."""
    import tarfile

    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w") as tar:
        for name, data in (("Dockerfile", plan.dockerfile_text),
                           ("ca/extra.crt", plan.ca_bundle or b"")):
            info = tarfile.TarInfo(name)
            info.size = len(data)
            info.mode = 0o644
            info.mtime = 0
            tar.addfile(info, io.BytesIO(data))
    buffer.seek(0)
    return buffer


# ---------------------------------------------------------------------------------------------
# Resolution against the engine


class BuildLog:
    """Follows a classic-builder log to quote the failing step and its last lines."""

    def __init__(self) -> None:
        self.step = ""
        self.since_step: list[str] = []
        self._partial = ""

    def feed(self, text: str) -> list[str]:
        text = self._partial + text
        lines = text.split("\n")
        self._partial = lines.pop()
        out = [_ANSI.sub("", line).rstrip("\r") for line in lines]
        for line in out:
            if _STEP.match(line):
                self.step, self.since_step = line, []
            elif line.strip() and not line.startswith(_NOISE):
                self.since_step.append(line)
                del self.since_step[:-12]
        return out

    def flush(self) -> list[str]:
        rest, self._partial = self._partial, ""
        return self.feed(rest + "\n") if rest else []

    def failure(self, error: str, origin: str) -> BuildFailed:
        step = self.step or "(before the first step)"
        tail = [line for line in self.since_step if line.strip() != error.strip()][-10:]
        quoted = "\n".join(f"  | {line}" for line in tail)
        message = f"building the sandbox image from {origin} failed at {step}\n  {error.strip()}"
        if quoted:
            message += f"\n  last output:\n{quoted}"
        return BuildFailed(message, hint=f"fix {origin} and run again (--verbose shows the "
                                         "whole build log)")


class ImageResolver:
    """Resolves DockerOptions to a ready image on one engine."""

    def __init__(self, engine: eng.Engine, *, labels: Mapping[str, str] | None = None,
                 memo: StatMemo | None = None, user: str | None = None) -> None:
        self.engine = engine
        self.labels = dict(labels or {})
        self.memo = memo or StatMemo.default()
        self.user = user

    async def resolve(self, options: DockerOptions, workspace: Path, *, trusted: bool,
                      force_build: bool = False) -> AsyncIterator[Status | ResolvedImage]:
        """Status events while it works, then exactly one ResolvedImage."""
        source = await anyio.to_thread.run_sync(
            lambda: find_source(options, workspace, trusted=trusted))
        for notice in source.notices:
            yield Status("resolving-image", f"notice: {notice}")
        if source.kind == "image":
            assert source.image is not None
            async for status in self._pull_as_needed(source.image, options.pull):
                yield status
            image_id = await self.image_id(source.image)
            if image_id is None:
                raise ImageError(f"the image {source.image} does not exist on this Docker engine",
                                 hint=f"build or pull it first (docker pull {source.image}), or "
                                      "drop --docker-image to use the bundled sandbox image")
            version = await self.claude_version(source.image, image_id)
            await self.check_forwarder(options, source, source.image, image_id)
            yield ResolvedImage(source.image, image_id, source, version)
            return
        plan = await anyio.to_thread.run_sync(lambda: plan_build(source, options, self.memo))
        if plan.key.whole_context:
            yield Status("resolving-image", f"the cache key covers the whole build context: "
                                            f"{plan.key.reason}")
        built = False
        image_id = None if force_build or options.no_cache else await self.image_id(plan.tag)
        if image_id is None:
            async for status in self._build_locked(plan, nocache=force_build or options.no_cache,
                                                   pull=options.pull):
                yield status
            image_id = await self.image_id(plan.tag)
            if image_id is None:
                raise ImageError(f"the build of {plan.tag} finished but the image is missing",
                                 hint="run again; check 'docker images'")
            built = True
        version = await self.claude_version(plan.tag, image_id)
        await self.check_forwarder(options, source, plan.tag, image_id)
        yield ResolvedImage(plan.tag, image_id, source, version, built=built, key=plan.key)

    async def plan(self, options: DockerOptions, workspace: Path, *,
                   trusted: bool) -> tuple[ImageSource, BuildPlan | None]:
        """The source and (for Dockerfiles) the build plan, without touching the engine."""
        source = await anyio.to_thread.run_sync(
            lambda: find_source(options, workspace, trusted=trusted))
        if source.kind == "image":
            return source, None
        plan = await anyio.to_thread.run_sync(lambda: plan_build(source, options, self.memo))
        return source, plan

    def ready_blocking(self, options: DockerOptions, workspace: Path, *,
                       trusted: bool) -> ResolvedImage | None:
        """What `resolve()` gives when it has nothing to build, probe or tell; else None.
        Blocking (a CLI run's head start)."""
        source = find_source(options, workspace, trusted=trusted)
        if source.notices or options.no_cache:
            return None
        key: CacheKey | None = None
        if source.kind == "image":
            assert source.image is not None
            ref = source.image
            if options.pull == "always" and not pulled_in_process(ref):
                return None
        else:
            plan = plan_build(source, options, self.memo)
            if plan.key.whole_context:
                return None
            ref, key = plan.tag, plan.key
        image_id = self._inspect(ref)
        version = self._known_version(image_id) if image_id is not None else None
        if image_id is None or version is None:
            return None
        if needs_node(options, source) and not self._node_present(ref, image_id):
            return None
        return ResolvedImage(ref, image_id, source, version, key=key)

    async def image_id(self, ref: str) -> str | None:
        """The id of `ref` on the engine, or None when it does not exist."""
        return await eng.call(f"inspecting the image {ref}", self._inspect, ref)

    def _inspect(self, ref: str) -> str | None:
        try:
            return str(self.engine.api.inspect_image(ref)["Id"])
        except NotFound:
            return None

    async def _pull_as_needed(self, ref: str, policy: str) -> AsyncIterator[Status]:
        """Pull a user-named image as `docker.pull` says: when absent (`missing`), never, or
        once per process (`always`)."""
        if policy == "always" and not pulled_in_process(ref):
            async for status in pull_image(self.engine, ref):
                yield status
            return
        if await self.image_id(ref) is not None:
            return
        if policy == "never":
            raise missing_image(ref)
        async for status in pull_image(self.engine, ref):
            yield status

    async def _check_bases(self, plan: BuildPlan) -> None:
        """With `docker.pull = "never"`, every image the Dockerfile builds from must be here:
        the classic builder would otherwise pull a missing one by itself."""
        text = plan.dockerfile_text.decode("utf-8", "replace")
        for base in base_images(text, plan.build_args):
            if await self.image_id(base) is None:
                raise ImageError(
                    f"{plan.source.origin} builds FROM {base}, which is not on this Docker engine, "
                    "and docker.pull is \"never\"",
                    hint=f"pull or load it yourself (docker pull {base}), or allow pulling: "
                         "--pull missing (docker.pull = \"missing\")")

    async def _build_locked(self, plan: BuildPlan, *, nocache: bool,
                            pull: str = "missing") -> AsyncIterator[Status]:
        if pull == "never":
            await self._check_bases(plan)
        lock_path = subdir("sandbox/locks", cache=True) / f"{plan.key.digest[:24]}.lock"
        waited = False
        while (held := try_lock(lock_path)) is None:
            if not waited:
                waited = True
                yield Status("building-image", f"waiting for another build of {plan.tag}")
            await anyio.sleep(LOCK_POLL)
        with held:
            if waited and not nocache and await self.image_id(plan.tag) is not None:
                return
            async for status in self._build(plan, nocache=nocache, pull=pull == "always"):
                yield status

    async def _build(self, plan: BuildPlan, *, nocache: bool,
                     pull: bool = False) -> AsyncIterator[Status]:
        origin = plan.source.origin
        yield Status("building-image", f"building the sandbox image {plan.tag} from {origin}")
        log = BuildLog()
        base_pull: PullProgress | None = None
        args = dockerfile_args(plan.dockerfile_text.decode("utf-8", "replace"), plan.build_args)
        items: ThreadedIterator[dict[str, Any]] = ThreadedIterator(
            self._build_items(plan, nocache, pull), name="channelcoder-build")
        items.start()
        started = time.monotonic()
        try:
            while True:
                try:
                    item = await items.receive()
                except anyio.EndOfStream:
                    break
                except Exception as exc:
                    translated = eng.translate(exc, f"building {plan.tag}")
                    if isinstance(translated, DockerUnavailable):
                        raise translated from exc
                    raise BuildFailed(f"building the sandbox image from {origin} failed: "
                                      f"{eng.explain(exc)}",
                                      hint=f"check {origin} and the Docker engine") from exc
                if "error" in item:
                    for line in log.flush():
                        yield Status("building-image", f"building {plan.tag}", line)
                    error = str(item.get("error") or "unknown error")
                    if _FROM.match(log.step):
                        raise _base_pull_failed(error, _step_image(log.step, args), origin)
                    raise log.failure(error, origin)
                if _is_pull_progress(item):
                    if base_pull is None or base_pull.ref != _step_image(log.step, args):
                        base_pull = PullProgress(_step_image(log.step, args))
                        yield Status(PULLING, f"pulling {base_pull.ref} (the base image)")
                    report = base_pull.feed(item)
                    if report is not None:
                        yield Status(PULLING, report)
                    continue
                held = base_pull.flush() if base_pull is not None else None
                if held is not None:
                    yield Status(PULLING, held)
                text = item.get("stream")
                if isinstance(text, str):
                    for line in log.feed(text):
                        yield Status("building-image", f"building {plan.tag}", line)
                elif isinstance(item.get("status"), str):
                    yield Status("building-image", f"building {plan.tag}", str(item["status"]))
            for line in log.flush():
                yield Status("building-image", f"building {plan.tag}", line)
        finally:
            items.close()
        yield Status("building-image",
                     f"built {plan.tag} in {time.monotonic() - started:.1f} s")

    def _build_items(self, plan: BuildPlan, nocache: bool,
                     pull: bool = False) -> Iterator[dict[str, Any]]:
        """The decoded build stream (a generator: the request starts in the reader thread).
        `pull` refreshes the FROM images from their registries (docker build --pull); without
        it the classic builder still pulls a FROM image the engine does not have."""
        labels = {**self.labels, MANAGED: "1", IMAGE_KEY: plan.key.digest,
                  IMAGE_SOURCE: plan.source.origin}
        args = {**proxy_env(self.engine.host), **plan.build_args}
        common: dict[str, Any] = dict(tag=plan.tag, rm=True, forcerm=True, pull=pull,
                                      decode=True, nocache=nocache, buildargs=args,
                                      labels=labels)
        api = self.engine.builder()
        if plan.source.kind == "bundled":
            yield from api.build(fileobj=bundled_context(plan), custom_context=True, **common)
        else:
            assert plan.source.context is not None and plan.source.dockerfile is not None
            yield from api.build(path=str(plan.source.context),
                                 dockerfile=str(plan.source.dockerfile), **common)

    def _known_version(self, image_id: str) -> str | None:
        """The claude version probed before in this image, if any."""
        version = _known(VERSION_STORE, image_id)
        return version if isinstance(version, str) else None

    def _node_present(self, ref: str, image_id: str) -> bool:
        """Does `node` run in the image? Probed once per image id and remembered. Blocking."""
        present = _known(NODE_STORE, image_id)
        if isinstance(present, bool):
            return present
        present = probe_node(self.engine, ref, user=self.user, labels=self.labels)
        _remember(NODE_STORE, image_id, present)
        return present

    async def check_forwarder(self, options: DockerOptions, source: ImageSource, ref: str,
                              image_id: str) -> None:
        """In `proxy` mode the container's way out is a Node forwarder: an image of the user's
        without `node` is an ImageError that says so (probed once per image id)."""
        if not needs_node(options, source):
            return
        present = await eng.call(f"checking node in {ref}", self._node_present, ref, image_id,
                                 abandon=False)
        if not present:
            raise ImageError(
                f"the image {ref} has no 'node', which the sandbox's way out needs in the "
                "default network mode (proxy: a small Node forwarder carries its connections "
                "to channelcoder's egress proxy)",
                hint="install Node.js in the image (e.g. RUN apt-get install -y nodejs), or "
                     "choose another network mode: docker.network = \"open\" (Docker's "
                     "bridge; --network open)")

    async def claude_version(self, ref: str, image_id: str) -> str:
        """`claude --version` in the image, probed once per image id and remembered."""
        known_version = self._known_version(image_id)
        if known_version is not None:
            return known_version
        version = await eng.call(f"checking claude in {ref}", probe_claude, self.engine, ref,
                                 user=self.user, labels=self.labels, abandon=False)
        await anyio.to_thread.run_sync(_remember, VERSION_STORE, image_id, version)
        return version


_FROM = re.compile(r"^Step \d+/\d+ : FROM\s", re.IGNORECASE)


def _is_pull_progress(item: Mapping[str, Any]) -> bool:
    """A line of the engine's pull of a FROM image, inside a build stream."""
    return isinstance(item.get("status"), str) and ("id" in item or "progressDetail" in item)


def _step_image(step: str, args: Mapping[str, str]) -> str:
    """The image of a `Step n/m : FROM image [AS name]` line ("the base image" otherwise)."""
    words = [w for w in step.split(" : ", 1)[-1].split() if not w.startswith("--")]
    if not _FROM.match(step) or len(words) < 2:
        return "the base image"
    return _VARIABLE.sub(lambda m: args.get(m.group(1) or m.group(2), m.group(0)), words[1])


def _base_pull_failed(error: str, base: str, origin: str) -> PullFailed:
    failed = pull_failed(error, base, registry_of(base), authenticated=False)
    return PullFailed(f"building the sandbox image from {origin}: {failed.message}",
                      hint=failed.hint)


def _instructions(dockerfile: str) -> Iterator[list[str]]:
    """Each instruction's words (continuation lines joined, comments skipped)."""
    for raw in re.sub(r"\\\r?\n", " ", dockerfile).splitlines():
        words = raw.strip().split()
        if words and not words[0].startswith("#"):
            yield words


def dockerfile_args(dockerfile: str, build_args: Mapping[str, str]) -> dict[str, str]:
    """The ARGs declared before the first FROM (the ones a FROM line may use), with the build
    arguments given in place of their defaults; an ARG without a value in neither is left out."""
    args: dict[str, str] = {}
    for words in _instructions(dockerfile):
        if words[0].upper() == "FROM":
            break
        if words[0].upper() == "ARG":
            for word in words[1:]:
                name, sep, default = word.partition("=")
                if name in build_args:
                    args[name] = build_args[name]
                elif sep:
                    args[name] = default.strip("\"'")
    return args


def base_images(dockerfile: str, build_args: Mapping[str, str]) -> list[str]:
    """The images a Dockerfile builds from (FROM and COPY --from=IMAGE), without `scratch`,
    its own stages and references whose variables it cannot resolve."""
    args = dockerfile_args(dockerfile, build_args)
    stages: set[str] = set()
    found: list[str] = []
    for words in _instructions(dockerfile):
        instruction = words[0].upper()
        candidates: list[str] = []
        if instruction == "FROM":
            rest = [w for w in words[1:] if not w.startswith("--")]
            if not rest:
                continue
            candidates.append(rest[0])
            if len(rest) >= 3 and rest[1].lower() == "as":
                stages.add(rest[2].lower())
        elif instruction == "COPY":
            candidates += [w[len("--from="):] for w in words[1:] if w.startswith("--from=")]
        for candidate in candidates:
            ref = _VARIABLE.sub(lambda m: args.get(m.group(1) or m.group(2), "\0"), candidate)
            if "\0" in ref or "$" in ref or not ref or ref.isdigit():
                continue
            if ref.lower() in stages or ref.lower() == "scratch" or ref in found:
                continue
            found.append(ref)
    return found


def _known(store: str, image_id: str) -> object:
    """What a probe found in the image `image_id` (a cache file keyed by image id), or None."""
    known = read_json(subdir("sandbox", cache=True) / store, {})
    return known.get(image_id) if isinstance(known, dict) else None


def _remember(store: str, image_id: str, value: object) -> None:
    path = subdir("sandbox", cache=True) / store
    with file_lock(path.with_suffix(".lock")):
        known = read_json(path, {})
        known = known if isinstance(known, dict) else {}
        known[image_id] = value
        write_json(path, known)


def needs_node(options: DockerOptions, source: ImageSource) -> bool:
    """The bundled image has Node (it installs Claude Code with npm); another may not."""
    return options.network == "proxy" and source.kind != "bundled"


def probe_node(engine: eng.Engine, ref: str, *, user: str | None,
               labels: Mapping[str, str]) -> bool:
    """Does `node --version` run inside the image? Blocking."""
    ran = _run_version(engine, ref, "node", user=user, labels=labels)
    return ran is not None and ran[0] == 0


def _run_version(engine: eng.Engine, ref: str, command: str, *, user: str | None,
                 labels: Mapping[str, str]) -> tuple[int, str] | None:
    """`command --version` inside the image (no network, no capabilities): its exit code and
    output, or None when the image has no such command. Blocking."""
    api = engine.api
    host_config = {"NetworkMode": "none", "CapDrop": ["ALL"],
                   "SecurityOpt": ["no-new-privileges"], "Init": True, "PidsLimit": 128}
    container = api.create_container({
        "Image": ref, "Cmd": ["--version"], "Entrypoint": [command], "User": user or "",
        "HostConfig": host_config,
        "Labels": {**labels, MANAGED: "1", JOB: "probe", **owner_labels()}})
    cid = container["Id"]
    try:
        try:
            api.start(cid)
        except EngineError as exc:
            if "not found" in eng.explain(exc) or "no such file" in eng.explain(exc).lower():
                return None
            raise
        code = int(api.wait(cid, timeout=PROBE_TIMEOUT).get("StatusCode", -1))
        return code, api.logs(cid, stdout=True, stderr=True).decode("utf-8", "replace")
    finally:
        with contextlib.suppress(Exception):
            api.remove_container(cid, force=True)


def probe_claude(engine: eng.Engine, ref: str, *, user: str | None,
                 labels: Mapping[str, str]) -> str:
    """`claude --version` inside the image. Blocking."""
    missing = ImageError(
        f"the image {ref} has no working 'claude' command",
        hint="install the Claude Code CLI in it (RUN npm install -g "
             f"@anthropic-ai/claude-code@{pinned_claude_version()}), or drop --docker-image / "
             "--dockerfile to use the bundled sandbox image")
    ran = _run_version(engine, ref, "claude", user=user, labels=labels)
    if ran is None:
        raise missing
    code, output = ran
    match = _VERSION.search(output)
    if code != 0 or not match:
        raise missing
    return match.group(1)
