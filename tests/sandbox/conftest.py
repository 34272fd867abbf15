"""Sandbox tests: every test that touches the engine is checked for leaked containers."""

from __future__ import annotations

import pytest


@pytest.fixture(autouse=True)
def _leak_guard(request: pytest.FixtureRequest) -> None:
    if "docker_client" in request.fixturenames or "sandbox_image" in request.fixturenames:
        request.getfixturevalue("no_leaked_containers")
