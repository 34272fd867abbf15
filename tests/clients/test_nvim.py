"""The Neovim plugin in headless Neovim 0.7.2 and 0.11.x against the real language server,
without a job: setup, position encodings, the applyEdit handler's version check and review."""

from __future__ import annotations

from pathlib import Path

import pytest
from tests.clients.test_nvim_support import assert_passed, find_nvim, run_lua

SERIES = ["0.7", "0.11"]


@pytest.fixture(params=SERIES, ids=lambda s: f"nvim-{s}")
def nvim(request: pytest.FixtureRequest) -> Path:
    return find_nvim(request.param)


@pytest.fixture
def workdir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.setenv("CHANNELCODER_STATE_DIR", str(tmp_path / "state"))
    work = tmp_path / "work"
    work.mkdir()
    return work


def test_plugin_without_jobs(nvim: Path, workdir: Path) -> None:
    run = run_lua(nvim, "test_plugin.lua", workdir)
    assert_passed(run, 13)
    # what a user sees: the created file is on disk only after :w, deletion was rejected
    assert (workdir / "gone.txt").exists()
    assert (workdir / "renamed.txt").exists() and not (workdir / "old.txt").exists()


def test_stop_restart_and_a_server_that_keeps_dying(nvim: Path, workdir: Path) -> None:
    run = run_lua(nvim, "test_restart.lua", workdir)
    assert_passed(run, 3)
