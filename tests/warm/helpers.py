"""Finding warm and standby containers of this test run (labels of sandbox/warm/sandbox.py)."""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Any

from channelcoder.sandbox.labels import SESSION, STANDBY, WARM
from tests.plugins.docker import RUN_ID, RUN_LABEL

GUARD = 10.0


def warm_containers(client: Any, *labels: str) -> list[dict[str, Any]]:
    """This run's warm containers (low-level list: id, labels, state), optionally filtered."""
    filters = [f"{RUN_LABEL}={RUN_ID}", WARM, *labels]
    return list(client.api.containers(all=True, filters={"label": filters}))


def session_container(client: Any, session: str) -> str:
    (found,) = warm_containers(client, f"{SESSION}={session}")
    return str(found["Id"])


def warm_dir(container: dict[str, Any]) -> Path:
    return Path(container["Labels"][WARM])


def live_dirs(directory: Path) -> list[str]:
    return sorted(p.name for p in (directory / "live").iterdir())


def ready_standby(client: Any) -> dict[str, Any] | None:
    """The run's standby container once its claude is spawned (meta.json says ready)."""
    for container in warm_containers(client, f"{STANDBY}=1"):
        try:
            meta = json.loads((warm_dir(container) / "meta.json").read_text())
        except (OSError, ValueError):
            continue
        if meta.get("ready") and meta.get("standby"):
            return container
    return None


def wait_gone(client: Any, container_id: str, guard: float = GUARD) -> None:
    deadline = time.monotonic() + guard
    while any(c["Id"] == container_id for c in client.api.containers(all=True)):
        if time.monotonic() > deadline:
            raise AssertionError(f"container {container_id[:12]} still exists after {guard:g} s")
        time.sleep(0.05)
