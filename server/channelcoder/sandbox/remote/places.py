"""A warm session's places on a remote engine: the session's volumes, which its warm
container keeps mounted, filled before each turn with what changed here since the last one and
read back after it."""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

from ...errors import ChannelCoderError, SandboxError
from .. import engine as eng
from .detect import EngineSite
from .process import PlannedContainer, bring_back_changes, fill_volumes, plan_remote
from .volumes import Layout

if TYPE_CHECKING:
    from ...launch import LaunchSpec
    from ..container.process import ContainerSpec


@dataclass
class RemotePlaces:
    site: EngineSite
    layout: Layout
    container: ContainerSpec  # the planned container, with the volumes for its mounts
    image: str
    labels: dict[str, str]

    @classmethod
    async def fill(cls, engine: eng.Engine, site: EngineSite, spec: LaunchSpec,
                   planned: PlannedContainer, *, uid: int | None, gid: int | None,
                   labels: dict[str, str]) -> RemotePlaces:
        container, layout, slot = plan_remote(spec, planned)
        if slot is not None:  # only a session's turn runs warm, and its volumes are its own
            slot.release()
        image = planned.resolved.ref
        await fill_volumes(engine, site, layout, image=image, uid=uid, gid=gid, labels=labels)
        return cls(site, layout, container, image, labels)

    async def bring_back(self, engine: eng.Engine) -> None:
        try:
            await bring_back_changes(engine, self.site, self.layout, image=self.image,
                                     labels=self.labels)
        except ChannelCoderError:
            raise
        except Exception as exc:
            raise SandboxError(
                f"could not bring the turn's changes back from the engine at "
                f"{self.site.host}: {exc}",
                hint="they stay in the session's volume there and come back after its next "
                     "turn; check that the engine is reachable") from exc
