"""The image cache against the real engine: rebuild exactly when the build's inputs change."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from channelcoder.claude.events import Status
from channelcoder.config import DockerOptions
from channelcoder.sandbox.image.resolve import ResolvedImage
from channelcoder.sandbox.manager import SandboxManager
from channelcoder.trust import set_trusted

pytestmark = pytest.mark.docker


async def resolve(workspace: Path, **options: Any) -> tuple[ResolvedImage, list[Status]]:
    statuses: list[Status] = []
    found: ResolvedImage | None = None
    async for item in SandboxManager.shared().resolve_image(DockerOptions(**options), workspace):
        if isinstance(item, ResolvedImage):
            found = item
        else:
            statuses.append(item)
    assert found is not None
    return found, statuses


def builds(statuses: list[Status]) -> int:
    return sum(1 for s in statuses if s.phase == "building-image" and s.log_line is None
               and s.message.startswith("building the sandbox image"))


async def test_an_unchanged_bundled_image_resolves_without_building(sandbox_image: str,
                                                                    tmp_path: Path) -> None:
    first, _ = await resolve(tmp_path)
    again, statuses = await resolve(tmp_path)
    assert first.ref == again.ref == sandbox_image
    assert again.image_id == first.image_id and not again.built
    assert builds(statuses) == 0
    assert again.claude_version == first.claude_version


async def test_editing_the_dockerfile_or_a_copied_file_rebuilds_and_nothing_else_does(
        sandbox_image: str, tmp_path: Path, docker_client: Any) -> None:
    ws = tmp_path / "ws"
    ws.mkdir()
    dockerfile = ws / "Dockerfile"
    dockerfile.write_text(f"FROM {sandbox_image}\n# channelcoder: sandbox\n"
                          "COPY marker.txt /opt/marker.txt\n")
    (ws / "marker.txt").write_text("one\n")
    (ws / "notes.md").write_text("unrelated\n")
    set_trusted(ws)

    first, statuses = await resolve(ws)
    assert first.built and builds(statuses) == 1
    assert any(s.log_line and "COPY marker.txt" in s.log_line for s in statuses)

    (ws / "notes.md").write_text("unrelated, edited\n")
    same, statuses = await resolve(ws)
    assert (same.ref, same.built, builds(statuses)) == (first.ref, False, 0)

    (ws / "marker.txt").write_text("two\n")
    copied, statuses = await resolve(ws)
    assert copied.ref != first.ref and copied.built and builds(statuses) == 1

    dockerfile.write_text(dockerfile.read_text() + "ENV CC_EDITED=1\n")
    edited, statuses = await resolve(ws)
    assert edited.ref not in (first.ref, copied.ref) and edited.built
    assert docker_client.images.get(edited.ref).attrs["Config"]["Env"].count("CC_EDITED=1") == 1


async def test_no_cache_forces_a_rebuild(sandbox_image: str, tmp_path: Path) -> None:
    ws = tmp_path / "ws"
    ws.mkdir()
    (ws / "Dockerfile").write_text(f"FROM {sandbox_image}\n# channelcoder: sandbox\n"
                                   "RUN date +%s%N > /home/claude/built-at\n")
    set_trusted(ws)
    first, _ = await resolve(ws)
    forced, statuses = await resolve(ws, no_cache=True)
    assert forced.ref == first.ref and forced.built and builds(statuses) == 1
    assert forced.image_id != first.image_id
