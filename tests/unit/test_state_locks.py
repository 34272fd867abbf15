"""File locks and periodic housekeeping from state.py (pure code, real flock)."""

from __future__ import annotations

from pathlib import Path

import pytest

from channelcoder.state import Periodic, file_lock, shared_lock, try_lock


def test_a_held_lock_keeps_others_out_until_released(tmp_path: Path) -> None:
    path = tmp_path / "locks" / "a.lock"
    with file_lock(path):
        assert try_lock(path) is None
    held = try_lock(path)
    assert held is not None
    assert try_lock(path) is None
    held.release()
    held.release()  # twice is harmless
    again = try_lock(path)
    assert again is not None
    again.release()


def test_shared_holders_share_and_keep_an_exclusive_taker_out(tmp_path: Path) -> None:
    path = tmp_path / "b.lock"
    first, second = shared_lock(path), shared_lock(path)
    assert try_lock(path) is None
    first.release()
    assert try_lock(path) is None
    second.release()
    taken = try_lock(path)
    assert taken is not None
    taken.release()


def test_periodic_runs_once_per_interval_and_swallows_its_errors() -> None:
    calls: list[int] = []

    def reap() -> None:
        calls.append(1)
        raise OSError("disk gone")

    every_hour = Periodic(reap, interval=3600.0)
    every_hour()
    every_hour()
    assert len(calls) == 1
    always = Periodic(reap, interval=0.0)
    always()
    always()
    assert len(calls) == 3


def test_periodic_lets_unexpected_errors_through() -> None:
    def broken() -> None:
        raise ValueError("a bug")

    with pytest.raises(ValueError):
        Periodic(broken)()
