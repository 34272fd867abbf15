"""The VS Code extension (clients/vscode): its node unit suite with a stubbed `vscode`, and
`vsce package`. The protocol tests against the real server are in test_vscode_protocol.py."""

from __future__ import annotations

import json
import subprocess
import zipfile
from pathlib import Path

from tests.clients import vscode_support
from tests.clients.vscode_support import EXT, node_run

vscode_extension = vscode_support.vscode_extension


def test_unit_suite_passes(vscode_extension: Path) -> None:
    """Commands registered, settings mapped, input-box flows, cancel wiring, proposals, manifest."""
    proc = node_run(["--test", "out/test/unit/"], timeout=180)
    output = proc.stdout + proc.stderr
    assert proc.returncode == 0, output[-6000:]
    assert "# fail 0" in output
    passed = int(output.split("# pass ", 1)[1].split()[0])
    assert passed >= 40, f"only {passed} unit tests ran:\n{output[-3000:]}"


def test_vsce_packages_the_extension(vscode_extension: Path, tmp_path: Path) -> None:
    """`vsce package` validates the manifest and ships the built code with its runtime deps only."""
    vsix = tmp_path / "channelcoder.vsix"
    proc = subprocess.run([str(EXT / "node_modules/.bin/vsce"), "package", "--out", str(vsix)],
                          cwd=EXT, capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, (proc.stdout + proc.stderr)[-4000:]
    with zipfile.ZipFile(vsix) as archive:
        names = set(archive.namelist())
        manifest = json.loads(archive.read("extension/package.json"))
    assert f"extension/{manifest['main'].removeprefix('./')}" in names
    assert "extension/node_modules/vscode-languageclient/package.json" in names
    assert not [n for n in names if n.startswith(("extension/src/", "extension/out/test/"))]
    assert not [n for n in names if n.startswith(("extension/node_modules/typescript/",
                                                  "extension/node_modules/@vscode/vsce/"))]
    assert manifest["engines"]["vscode"] == "^1.91.0"
