"""The language server starting in a workspace where a sandboxed job's process died."""

from __future__ import annotations

from pathlib import Path

from lsprotocol import types

from tests.conftest import die_mid_job, git, make_repo
from tests.lsp.conftest import Start, wait_for


async def test_a_dead_jobs_git_mirror_is_checked_when_the_server_starts_there(
        lsp: Start, tmp_path: Path) -> None:
    repo = make_repo(tmp_path / "repo", {"app.py": "X = 1\n"})
    marker = tmp_path / "ran-on-the-host"
    die_mid_job(repo, f"touch {marker}; false")
    session = await lsp(repo)
    await wait_for(lambda: any(".git/config" in m.message and "core.fsmonitor" in m.message
                               for m in session.client.messages))
    warning = next(m for m in session.client.messages if ".git/config" in m.message)
    assert warning.type == types.MessageType.Warning
    assert git(repo, "log", "-1", "--format=%s") == "made before the crash\n"
    git(repo, "status")
    assert not marker.exists()
