"""What `channelcoder doctor` (and the LSP's `channelcoder.doctor`) reports about Docker mode.

Each check is a plain record: name, ok, one-line detail, hint. Nothing secret is read into a
detail: credentials are named by source, never shown. Nothing is built.
"""

from __future__ import annotations

import os
import shutil
import subprocess
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import anyio

from ..config import DockerOptions
from ..errors import ChannelCoderError
from . import engine as eng
from .container.claude_config import credential_source
from .image.resolve import ImageResolver, pinned_claude_version


@dataclass(frozen=True)
class Check:
    name: str
    ok: bool
    detail: str
    hint: str = ""

    def to_json(self) -> dict[str, Any]:
        return asdict(self)


async def diagnose(workspace: Path, options: DockerOptions) -> list[Check]:
    from ..trust import is_trusted
    from .manager import SandboxManager, sandbox_user

    checks: list[Check] = []
    trusted = is_trusted(workspace)
    try:
        engine = await SandboxManager.shared().engine()
        version = await eng.call("asking the engine for its version", engine.version)
        checks.append(Check("engine", True, f"Docker {version.get('Version', '?')} at "
                                            f"{engine.host} over {engine.transport}; "
                                            f"{engine.describe_version()}"))
    except ChannelCoderError as exc:
        checks.append(Check("engine", False, exc.message, exc.hint))
        checks += await anyio.to_thread.run_sync(_offline_checks, workspace, trusted)
        return checks
    checks.append(await where_check(options))
    resolver = ImageResolver(engine, user=sandbox_user(options)[2])
    try:
        source, plan = await resolver.plan(options, workspace, trusted=trusted)
        ref = plan.tag if plan is not None else (source.image or "?")
        image_id = await resolver.image_id(ref)
        notes = "".join(f"; {n}" for n in source.notices)
        if image_id is None and plan is None and options.pull != "never":
            checks.append(Check("image", True, f"{ref}: not on this engine yet; the first "
                                               f"--docker run pulls it{notes}"))
        elif image_id is None:
            how = ("run 'channelcoder image build' (or any --docker run builds it)"
                   if plan is not None else f"docker pull {ref}, or build it, or allow "
                                            "pulling: docker.pull = \"missing\"")
            state = "not built" if plan is not None else "not on this engine"
            checks.append(Check("image", False, f"{ref} from {source.origin}: {state}{notes}",
                                how))
        else:
            checks.append(Check("image", True, f"{ref} from {source.origin} "
                                               f"({image_id[7:19]}){notes}"))
            pinned = pinned_claude_version()
            try:
                inside = await resolver.claude_version(ref, image_id)
                same = inside == pinned
                checks.append(Check("claude", same or source.kind == "image",
                                    f"{inside} in the image (pinned: {pinned})",
                                    "" if same else "rebuild: channelcoder image build --no-cache"))
            except ChannelCoderError as exc:
                checks.append(Check("claude", False, exc.message, exc.hint))
        checks.append(await anyio.to_thread.run_sync(pull_check, options, source.image))
    except ChannelCoderError as exc:
        checks.append(Check("image", False, exc.message, exc.hint))
    checks += await anyio.to_thread.run_sync(_offline_checks, workspace, trusted)
    checks.append(network_check(options, workspace))
    return checks


async def where_check(options: DockerOptions) -> Check:
    """Is the engine on this machine (bind mounts) or another (the workspace copied in)?"""
    from .manager import SandboxManager

    try:
        site = await anyio.to_thread.run_sync(SandboxManager.shared().site, options)
    except Exception as exc:
        return Check("files", False, f"could not tell where the engine is: {exc}")
    if site.remote:
        return Check("files", True, f"remote engine at {site.host}, workspace copied in "
                                    f"({site.why})")
    return Check("files", True, f"local engine: the workspace is mounted ({site.why})")


NETWORK_MODES = {
    "proxy": "no network but channelcoder's egress proxy (credentials stay on the host)",
    "open": "Docker's bridge network: anything the host can reach",
    "none": "no network at all (the API cannot be reached either)",
    "host": "the host's own network",
}


def network_check(options: DockerOptions, workspace: Path) -> Check:
    """The network mode, and in `proxy` mode what the proxy lets through (never a secret)."""
    detail = f"{options.network}: {NETWORK_MODES.get(options.network, '?')}"
    if options.network == "proxy":
        from .container.egress_link import allowlist, host_proxy

        detail += f"; allowed: {', '.join(allowlist(options, workspace))}"
        through = host_proxy()
        if through:
            detail += f"; out through your proxy {through}"
        detail += "; the forwarder needs node in the image"
    return Check("network", True, detail)

PULL_POLICY = {
    "missing": "an image missing from the engine is pulled from its registry",
    "never": "images are never pulled; a missing one is an error",
    "always": "each image is pulled once per process before its first use",
}


def pull_check(options: DockerOptions, image: str | None) -> Check:
    """The pull policy, and for a named image whose registry credentials would be sent (their
    source, never their value). Blocking: a credential helper is a process."""
    from .image.registry_auth import find_auth, registry_of

    detail = f"docker.pull = \"{options.pull}\": {PULL_POLICY.get(options.pull, '?')}"
    if image is None or options.pull == "never":
        return Check("pull", True, detail)
    try:
        auth = find_auth(image)
    except ChannelCoderError as exc:
        return Check("pull", False, f"{detail}; {exc.message}", exc.hint)
    registry = registry_of(image)
    whose = f"credentials from {auth.source}" if auth else "no credentials (anonymous)"
    return Check("pull", True, f"{detail}; {registry}: {whose}")


def _offline_checks(workspace: Path, trusted: bool) -> list[Check]:
    checks = []
    source = credential_source(os.environ)
    checks.append(Check("credentials", source != "none", source if source != "none" else
                        "no ANTHROPIC_API_KEY, CLAUDE_CODE_OAUTH_TOKEN or ~/.claude/.credentials.json",
                        "" if source != "none" else
                        "set ANTHROPIC_API_KEY, or run 'claude' once and /login"))
    checks.append(Check("trust", True, f"{workspace} is {'trusted' if trusted else 'not trusted'}"
                        + ("" if trusted else " (its Dockerfile, mounts and env files are ignored)"),
                        "" if trusted else "channelcoder trust, to allow them"))
    checks.append(_host_claude())
    return checks


def _host_claude() -> Check:
    from ..native import find_claude

    try:
        binary = find_claude()
    except ChannelCoderError:
        return Check("host claude", True, "not installed (only needed without --docker)")
    try:
        out = subprocess.run([binary, "--version"], capture_output=True, text=True, timeout=30,
                             stdin=subprocess.DEVNULL).stdout.strip()
    except (OSError, subprocess.TimeoutExpired) as exc:
        return Check("host claude", False, f"{binary} does not run: {exc}")
    return Check("host claude", True, f"{out or '?'} at {shutil.which(binary) or binary} "
                                      "(for runs without --docker)")
