"""A warm container's places on a remote engine: the volumes it keeps mounted (a session's, or
the workspace's pooled ones a standby holds), filled before each turn with what changed here
since the last one and read back after it — through that container once it runs
(`volumes.Inside`)."""

from __future__ import annotations

import logging
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import anyio

from ...errors import ChannelCoderError, SandboxError
from ...state import HeldLock
from .. import engine as eng
from ..container.mounts import CONFIG_DIR
from .detect import EngineSite
from .process import PlannedContainer, bring_back_changes, fill_volumes, plan_remote
from .tree import Source
from .volumes import Inside, Layout, remove_job_volumes

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
    slot: HeldLock | None = None  # the workspace's pooled volumes, held while this lives

    @classmethod
    def plan(cls, site: EngineSite, spec: LaunchSpec, planned: PlannedContainer, *,
             uid: int | None, gid: int | None, labels: dict[str, str]) -> RemotePlaces:
        """A session's volumes are its own; any other job's are a pooled slot of the
        workspace's (held until `close()`) or, all busy, its own."""
        container, layout, slot = plan_remote(spec, planned)
        return cls(site, layout, container, planned.resolved.ref, labels, uid, gid, slot)

    def config_comes_back_to(self, directory: Path) -> None:
        """Claude's config dir, which stays on the engine, comes back after the turn into
        `directory` (a session's, adopting a standby's conversation): the session's later
        turns send it to their own config volume, so `--resume` finds the transcript."""
        for volume in self.layout.volumes:
            if volume.target == CONFIG_DIR:
                volume.sources = [Source(directory, "")]
                volume.back = True

    async def close(self, engine: eng.Engine) -> None:
        """No container uses them any more: a job's own go, a pooled slot is free again."""
        try:
            await anyio.to_thread.run_sync(remove_job_volumes, engine.api, self.layout)
        except Exception as exc:
            log.warning("could not remove the job's volumes: %s", exc)
        finally:
            slot, self.slot = self.slot, None
            if slot is not None:
                slot.release()

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
