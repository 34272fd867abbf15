"""Building and running the VS Code extension's node code from pytest."""

from __future__ import annotations

import os
import shutil
import subprocess
from collections.abc import Mapping, Sequence
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
EXT = ROOT / "clients/vscode"


def node_run(args: Sequence[str], *, env: Mapping[str, str] | None = None,
             timeout: float = 300) -> subprocess.CompletedProcess[str]:
    node = shutil.which("node")
    assert node is not None
    return subprocess.run([node, *args], cwd=EXT, capture_output=True, text=True,
                          timeout=timeout, env=dict(env) if env is not None else None)


_built: list[Path] = []


@pytest.fixture(scope="session")
def vscode_extension() -> Path:
    """clients/vscode with its locked packages installed and the TypeScript built (once per run,
    though each test module binds the fixture itself)."""
    if _built:
        return _built[0]
    if shutil.which("node") is None or shutil.which("npm") is None:
        pytest.fail("Node.js 20+ and npm are needed for the VS Code extension; install them, "
                    "then run 'make setup'")
    proc = subprocess.run([str(ROOT / "scripts/setup-vscode.sh")], capture_output=True, text=True,
                          timeout=900, env={**os.environ})
    if proc.returncode != 0:
        pytest.fail(f"building the VS Code extension failed:\n{(proc.stdout + proc.stderr)[-4000:]}")
    _built.append(EXT)
    return EXT
