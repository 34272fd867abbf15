"""The VS Code extension inside a real VS Code: code-server's workbench in headless chromium, the
real `channelcoder lsp`, the real engine and Claude CLI in the sandbox, the scripted model.

One code-server session, with the extension's .vsix installed by `--install-extension`, runs
clients/vscode/test/e2e/suite.ts (through its runner, which prints `N passed, N failed`);
between its tests the suite picks the scripted model's scenario through a loopback switch this
test serves. Screenshots of what the user saw (the palette, the progress
notification, the refactor preview…) are kept under .cache/artefacts/vscode-e2e/. A second,
short session starts VS Code where the server is not on PATH.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import threading
from collections.abc import Callable, Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest
from tests.clients import vscode_support
from tests.clients.vscode_support import EXT, ROOT
from tests.plugins.docker import managed_containers

from channelcoder.testing.fake_anthropic import FakeAnthropic, Reply, Scenario, ToolCall, Turn

vscode_extension = vscode_support.vscode_extension

SERVER = Path(sys.executable).parent / "channelcoder"
CODE_SERVER_VERSION = "4.100.3"
ARTEFACTS = ROOT / ".cache/artefacts/vscode-e2e"


def _sed(old: str, new: str, file: str = "app.py") -> ToolCall:
    return ToolCall("Bash", {"command": f"sed -i s/{old}/{new}/ {file}"})


SCENARIOS: dict[str, Scenario] = {
    "translate": Scenario([Turn([_sed("hello", "bonjour")], first_delay=2),
                           Reply("Translated the greeting.")]),
    # After the reason, Claude revises its change (here: undoes it), so nothing is proposed.
    "discard": Scenario([Turn([_sed("bonjour", "hola")], first_delay=1),
                         Reply("Changed the greeting to Spanish."),
                         _sed("hola", "bonjour"),
                         Reply("Understood, keeping the French greeting.")]),
    "slow": Scenario([Turn([Reply("too late")], first_delay=90)]),
    "stale": Scenario([Turn([_sed("bonjour", "ciao")], first_delay=6),
                       Reply("Changed the greeting to Italian.")]),
    "conflict": Scenario([Turn([_sed("ciao", "hallo")], first_delay=6),
                          Reply("Changed the greeting to German.")]),
    "quick": Scenario([Reply("Nothing to change.")]),
    "disk": Scenario([Turn([_sed("hallo", "hei", "closed.py")], first_delay=5),
                      Reply("Changed the greeting to Norwegian.")]),
    "pending": Scenario([Turn([_sed("hallo", "hej")], first_delay=5),
                         Reply("Changed the greeting to Danish.")]),
}


def code_server() -> Path:
    cache = Path(os.environ.get("CHANNELCODER_CACHE") or ROOT / ".cache")
    return cache / f"code-server/{CODE_SERVER_VERSION}/node_modules/code-server/out/node/entry.js"


@pytest.fixture
def installed() -> Path:
    """code-server and chromium, installed by scripts/setup-code-server.sh (make setup)."""
    node = subprocess.run(["node", "-p", "process.versions.node.split('.')[0]"],
                          capture_output=True, text=True, timeout=30).stdout.strip()
    if node != "20" and not os.environ.get("CI"):
        pytest.skip(f"code-server {CODE_SERVER_VERSION} installs on Node.js 20 only (found {node})")
    if not code_server().exists() or shutil.which("chromium") is None:
        proc = subprocess.run([str(ROOT / "scripts/setup-code-server.sh")], capture_output=True,
                              text=True, timeout=900)
        if proc.returncode != 0 or not code_server().exists():
            pytest.fail("installing code-server failed:\n" + (proc.stdout + proc.stderr)[-4000:])
    return code_server()


@pytest.fixture
def model_switch(scripted: Callable[..., FakeAnthropic],
                 docker_client: Any) -> Iterator[tuple[FakeAnthropic, str]]:
    """The scripted model and the loopback URL the suite POSTs {"scenario": name} to (and
    {"containers": true}, answered with the ids of this test run's sandbox containers)."""
    api = scripted([])

    class Switch(BaseHTTPRequestHandler):
        def log_message(self, format: str, *args: object) -> None:
            return

        def do_POST(self) -> None:
            body = json.loads(self.rfile.read(int(self.headers.get("Content-Length") or 0)))
            if body.get("containers"):
                self._answer(200, json.dumps(sorted(managed_containers(docker_client))).encode())
                return
            name = body.get("scenario")
            found = SCENARIOS.get(name) if isinstance(name, str) else None
            if found is not None:
                api.scenario = found
            self._answer(200 if found is not None else 404, b"")

        def _answer(self, status: int, payload: bytes) -> None:
            self.send_response(status)
            self.send_header("Content-Length", str(len(payload)))
            self.end_headers()
            self.wfile.write(payload)

    server = ThreadingHTTPServer(("127.0.0.1", 0), Switch)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield api, f"http://127.0.0.1:{server.server_address[1]}"
    server.shutdown()
    server.server_close()


def leftover_processes(marker: str) -> list[str]:
    """Processes whose command line mentions `marker` (this test's scratch folder)."""
    found = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit() or int(entry.name) == os.getpid():
            continue
        try:
            cmdline = (entry / "cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
        except OSError:
            continue
        if marker in cmdline:
            found.append(f"{entry.name}: {cmdline[:200]}")
    return found


def package(out: Path) -> Path:
    """The extension as users get it: `vsce package`."""
    vsix = out / "channelcoder.vsix"
    proc = subprocess.run([str(EXT / "node_modules/.bin/vsce"), "package", "--out", str(vsix)],
                          cwd=EXT, capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, (proc.stdout + proc.stderr)[-4000:]
    return vsix


def run_suite(installed: Path, workspace: Path, scratch: Path, artefacts: Path,
              settings: dict[str, object], env: dict[str, str], test_filter: str,
              timeout: float, vsix: Path | None = None) -> int:
    """Run the suite's tests matching `test_filter` in one code-server session (with `vsix`
    installed by --install-extension, else the extension loaded from its folder); the number
    that passed (the test fails when any failed or a process outlived the runner)."""
    proc = subprocess.run(
        [shutil.which("node") or "node", str(EXT / "out/test/e2e/runner.js"),
         "--code-server", str(installed), "--workspace", str(workspace),
         "--scratch", str(scratch), "--artefacts", str(artefacts),
         "--settings", json.dumps(settings), "--filter", test_filter,
         *(["--vsix", str(vsix)] if vsix else [])],
        capture_output=True, text=True, timeout=timeout, env=env)
    output = proc.stdout + proc.stderr
    print(output)
    assert not leftover_processes(str(scratch)), "code-server or chromium outlived the runner"
    assert proc.returncode == 0, output[-8000:]
    last = [line for line in output.splitlines() if " passed, " in line][-1]
    passed, failed = (int(part.split()[0]) for part in last.split(", ")[:2])
    assert failed == 0, output[-4000:]
    return passed


@pytest.mark.docker
@pytest.mark.timeout(1500)
@pytest.mark.usefixtures("claude_bin", "sandbox_image", "no_leaked_containers")
def test_extension_in_real_vscode(vscode_extension: Path, installed: Path, git_repo: Path,
                                  model_switch: tuple[FakeAnthropic, str],
                                  tmp_path: Path) -> None:
    api, switch = model_switch
    (git_repo / ".gitignore").write_text(".vscode/\n")
    artefacts = ARTEFACTS / "session"
    shutil.rmtree(artefacts, ignore_errors=True)
    settings: dict[str, object] = {
        "channelcoder.serverPath": str(SERVER),
        "channelcoder.docker": {},  # the default network mode: the egress proxy
        "channelcoder.standby": False,
        "channelcoder.revealTranscript": True,
        "channelcoder.trace.server": "off",
        # Two invalid values: the server falls back to its defaults and says so, once, grouped.
        "channelcoder.maxTurns": "many",
        "channelcoder.idleTimeout": -5,
    }
    env = {**os.environ, "CHANNELCODER_E2E_MODEL": switch,
           "CHANNELCODER_E2E_TIMEOUT_MS": "1300000"}
    test_filter = os.environ.get("CHANNELCODER_E2E_FILTER", "")
    vsix = package(tmp_path)
    passed = run_suite(installed, git_repo, tmp_path / "vscode-e2e", artefacts, settings, env,
                       test_filter, 1450, vsix=vsix)
    assert passed >= (1 if test_filter else 9)
    shots = sorted(p.name for p in artefacts.glob("*.png"))
    if not test_filter:
        assert any("refactor-preview" in s for s in shots), shots
        assert any("progress-notification" in s for s in shots), shots
        reason_turns = [r for r in api.agent_requests()
                        if "keep the French greeting" in r.last_user_text()]
        assert reason_turns, "the reason typed after Discard reached Claude as the next turn"


@pytest.mark.timeout(300)
def test_server_not_found_then_picked_in_real_vscode(vscode_extension: Path, installed: Path,
                                                     git_repo: Path, tmp_path: Path) -> None:
    """VS Code started with a PATH that has no channelcoder (the server lives in a venv): the
    error names channelcoder.serverPath, its button's file picker takes the executable, which
    is written to the user settings, and the server starts."""
    artefacts = ARTEFACTS / "server-not-found"
    shutil.rmtree(artefacts, ignore_errors=True)
    path = [d for d in os.environ.get("PATH", "").split(os.pathsep)
            if d and not (Path(d) / "channelcoder").exists()]
    env = {k: v for k, v in os.environ.items()
           if k not in ("PYTHONPATH", "VIRTUAL_ENV", "PYTHONHOME")}
    env |= {"PATH": os.pathsep.join(path), "CHANNELCODER_E2E_SERVER_PATH": str(SERVER)}
    settings: dict[str, object] = {"channelcoder.docker": False, "channelcoder.standby": False}
    assert run_suite(installed, git_repo, tmp_path / "vscode-e2e", artefacts, settings, env,
                     "^missing-server:", 280) == 1
