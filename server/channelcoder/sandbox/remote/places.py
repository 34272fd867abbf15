"""A warm session's places on a remote engine: the session's volumes, which its warm
container keeps mounted, filled before each turn with what changed here since the last one and
read back after it — through that container once it runs (`volumes.Inside`)."""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import TYPE_CHECKING

from ...errors import ChannelCoderError, SandboxError
from .. import engine as eng
from .detect import EngineSite
from .process import PlannedContainer, bring_back_changes, fill_volumes, plan_remote
from .volumes import Inside, Layout

if TYPE_CHECKING:
    from ...launch import LaunchSpec
    from ..container.process import ContainerSpec
    from ..warm.sandbox import WarmSandbox

log = logging.getLogger(__name__)


@dataclass
class RemotePlaces:
    site: EngineSite
    layout: Layout
    container: ContainerSpec  # the planned container, with the volumes for its mounts
    image: str
    labels: dict[str, str]

    uid: int | None
    gid: int | None

    @classmethod
    def plan(cls, site: EngineSite, spec: LaunchSpec, planned: PlannedContainer, *,
             uid: int | None, gid: int | None, labels: dict[str, str]) -> RemotePlaces:
        container, layout, slot = plan_remote(spec, planned)
        if slot is not None:  # only a session's turn runs warm, and its volumes are its own
            slot.release()
        return cls(site, layout, container, planned.resolved.ref, labels, uid, gid)

    def _inside(self, warm: WarmSandbox | None) -> Inside | None:
        return None if warm is None else Inside(warm.container_id, self.container.user)

    async def fill(self, engine: eng.Engine, *, through: WarmSandbox | None) -> None:
        """Before a turn; `through` the session's running warm container, if it has one."""
        await fill_volumes(engine, self.site, self.layout, image=self.image, uid=self.uid,
                           gid=self.gid, labels=self.labels, inside=self._inside(through))

    async def bring_back(self, engine: eng.Engine, *, through: WarmSandbox) -> None:
        """After a turn: through its warm container, or (that container gone) a helper."""
        try:
            try:
                await bring_back_changes(engine, self.site, self.layout, image=self.image,
                                         labels=self.labels, inside=self._inside(through))
            except ChannelCoderError:
                raise
            except Exception as exc:
                log.info("bringing the changes back through the warm sandbox failed (%s); "
                         "reading the volumes instead", exc)
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
