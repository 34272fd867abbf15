"""`proxy` network mode, the container's side: no network, one way out to the host's proxy.

The container gets `--network none`. The host's egress proxy (`channelcoder.egress`) listens on a
Unix socket in a directory of its own, mounted read-only at /channelcoder/egress (a socket can be
connected to on a read-only mount; the job cannot replace it). A small Node forwarder started
beside claude (`forward.js`) listens on 127.0.0.1:3128 inside and carries each connection to
that socket. `HTTP(S)_PROXY` point at it, and so does `ANTHROPIC_BASE_URL`, whose requests the
proxy sends to the real API with the real credential: inside there are only placeholders.

`open_link()` describes the link; `serve()` starts the proxy, from a thread of its own
(`ProxyThread`), in a directory of the link's own (a one-shot container: served for as long as
it runs) or in a warm container's (served only while a process holds it — a turn of a kept-warm
session, or the language server's standby: between turns nothing listens and the sandbox has
no way out at all). The proxy reports refused connections and asks about unknown hosts through
`EgressHooks`, which the job that takes the container fills in (a head start or a standby makes
the container before the job exists).
"""

from __future__ import annotations

import logging
import os
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

from ...allowances import allowed_hosts
from ...claude.events import NetworkBlocked
from ...config import DockerOptions
from ...state import subdir
from .mounts import Mount

if TYPE_CHECKING:
    from ...egress import EgressProxy, ProxyThread

log = logging.getLogger(__name__)

PORT = 3128
INSIDE_URL = f"http://127.0.0.1:{PORT}"
SOCKET_DIR = "/channelcoder/egress"
SOCKET_NAME = "egress.sock"
FORWARDER = Path(__file__).with_name("forward.js")
FORWARDER_INSIDE = "/channelcoder/forward.js"
PRELUDE = f"node {FORWARDER_INSIDE}"
PROXY_VARIABLES = ("HTTP_PROXY", "HTTPS_PROXY", "http_proxy", "https_proxy", "ALL_PROXY",
                   "all_proxy", "NO_PROXY", "no_proxy")


@dataclass
class EgressHooks:
    """Where the proxy reports, and whom it asks: set by the job that runs in the container."""

    blocked: Callable[[NetworkBlocked], None] | None = None
    ask: Callable[[str, int], Awaitable[str]] | None = None

    def report(self, event: NetworkBlocked) -> None:
        log.info("egress proxy refused %s", event.describe())
        if self.blocked is not None:
            self.blocked(event)


@dataclass
class EgressLink:
    """The proxy for one container, and what the container needs to use it. Nothing runs and
    nothing is on the disk until `serve()`."""

    directory: Path
    env: dict[str, str]
    mounts: list[Mount]
    login_file: str | None
    hooks: EgressHooks = field(default_factory=EgressHooks)
    _factory: Callable[[Path], EgressProxy] | None = None
    _proxy: EgressProxy | None = None
    _thread: ProxyThread | None = None
    _made: Path | None = None

    def attach(self, blocked: Callable[[NetworkBlocked], None] | None,
               ask: Callable[[str, int], Awaitable[str]] | None) -> None:
        """The job that runs in the container: it hears of refusals, and may be asked."""
        self.hooks.blocked, self.hooks.ask = blocked, ask
        if self._proxy is not None:
            self._proxy.ask = ask

    @property
    def serving(self) -> bool:
        return self._thread is not None

    def serve(self, directory: Path | None = None) -> None:
        """Listen (blocking until it does) on the socket in `directory`: the one the container
        mounts at SOCKET_DIR — the link's own unless a warm container has its own. Once."""
        from ...egress import ProxyThread

        if self._thread is not None or self._factory is None:
            return
        if directory is None:
            directory = self.own_directory()
        try:
            self._proxy = self._factory(directory / SOCKET_NAME)
            self._proxy.ask = self.hooks.ask
            self._thread = ProxyThread.start(self._proxy)
        except BaseException:
            self.close()
            raise

    def own_directory(self) -> Path:
        """The link's own socket directory, made now: a container that mounts it can be
        created before the proxy serves."""
        self.directory.mkdir(mode=0o755, exist_ok=True)
        self._made = self.directory
        return self.directory

    def close(self) -> None:
        """Stop serving (the socket goes) and forget the link's own directory. Idempotent."""
        import shutil

        thread, self._thread = self._thread, None
        self._proxy = self._factory = None
        if thread is not None:
            try:
                thread.close()
            except Exception as exc:
                log.debug("stopping the egress proxy: %s", exc)
        made, self._made = self._made, None
        if made is not None:
            shutil.rmtree(made, ignore_errors=True)


def is_link_mount(mount: Mount) -> bool:
    """The socket directory's mount: which host directory serves it is not part of what makes
    two containers interchangeable."""
    return mount.container == SOCKET_DIR


def host_proxy(host_env: Mapping[str, str] | None = None) -> str | None:
    """The host's own proxy the egress proxy goes out through, as `--verbose` and `doctor`
    show it (address only), or None."""
    from ...egress.via import Route
    from ..engine.proxies import proxy_env

    return Route.from_env(proxy_env(None, os.environ if host_env is None else host_env)
                          ).describe()


def allowlist(options: DockerOptions, workspace: Path,
              host_env: Mapping[str, str] | None = None) -> list[str]:
    """What the proxy lets through, as `--verbose` and `doctor` show it."""
    from urllib.parse import urlsplit

    env = os.environ if host_env is None else host_env
    upstream = urlsplit(env.get("ANTHROPIC_BASE_URL") or "https://api.anthropic.com")
    api = f"{upstream.hostname}:{upstream.port or (443 if upstream.scheme == 'https' else 80)}"
    return [f"{api} (the API)", *options.network_allow, *allowed_hosts(workspace)]


def open_link(options: DockerOptions, workspace: Path, host_env: Mapping[str, str], *,
              ca_bundle: Path | None = None, uid: int | None = None) -> EgressLink:
    """The proxy for one container, not serving yet (see `EgressLink.serve`)."""
    from ...egress.credentials import Credentials
    from ...egress.policy import Policy
    from ...egress.via import Route
    from ..engine.proxies import proxy_env

    credentials = Credentials.from_environment(host_env)
    policy = Policy.build([*options.network_allow, *allowed_hosts(workspace)])
    directory = subdir("egress") / os.urandom(8).hex()
    hooks = EgressHooks()
    via = Route.from_env(proxy_env(None, host_env))
    upstream = host_env.get("ANTHROPIC_BASE_URL") or None

    def proxy(socket_path: Path) -> EgressProxy:
        from ...egress import EgressProxy

        return EgressProxy(policy, credentials, socket_path=socket_path, upstream=upstream,
                           ca_bundle=ca_bundle, on_blocked=hooks.report,
                           api_aliases=[f"127.0.0.1:{PORT}", f"localhost:{PORT}"],
                           socket_mode=0o600 if uid in (None, os.geteuid()) else 0o666,
                           via=via)
    env = {name: INSIDE_URL for name in PROXY_VARIABLES[:6]}
    env.update({"NO_PROXY": "127.0.0.1,localhost", "no_proxy": "127.0.0.1,localhost",
                "ANTHROPIC_BASE_URL": INSIDE_URL, "CHANNELCODER_EGRESS_PORT": str(PORT),
                "CHANNELCODER_EGRESS_SOCKET": f"{SOCKET_DIR}/{SOCKET_NAME}"})
    env.update(credentials.sandbox_env())
    mounts = [Mount(directory, SOCKET_DIR, read_only=True),
              Mount(FORWARDER, FORWARDER_INSIDE, read_only=True)]
    return EgressLink(directory, env, mounts, credentials.sandbox_credentials_file(), hooks,
                      proxy)
