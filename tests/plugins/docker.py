"""Docker fixtures: tests that need the engine skip locally without one but fail in CI."""

from __future__ import annotations

import os
from typing import Any

import pytest


def _connect() -> Any:
    import docker

    client = docker.from_env(timeout=30)
    client.ping()
    return client


@pytest.fixture(scope="session")
def docker_client() -> Any:
    """A docker-py client for the engine `make engine` made available."""
    try:
        return _connect()
    except Exception as exc:
        message = f"no Docker engine answers ({exc}); run 'make engine'"
        if os.environ.get("CI"):
            pytest.fail(message)
        pytest.skip(message)
