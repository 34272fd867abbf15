"""Claude's config dir for the sandbox: per session, credentials copied (0600) and back."""

from __future__ import annotations

import os
import shutil
import stat
from pathlib import Path

import pytest

from channelcoder.sandbox.container.claude_config import (
    config_dir_for,
    credential_source,
    find_transcript,
    prepare_config_dir,
)


@pytest.fixture
def host_claude(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A fake host ~/.claude (via CLAUDE_CONFIG_DIR), never the real one."""
    home = tmp_path / "host-claude"
    (home / "commands").mkdir(parents=True)
    (home / "commands" / "review.md").write_text("review it")
    (home / "CLAUDE.md").write_text("be brief")
    (home / ".credentials.json").write_text('{"token": "old"}')
    monkeypatch.setenv("CLAUDE_CONFIG_DIR", str(home))
    return home


def test_one_dir_per_session_and_workspace_else_per_job(tmp_path: Path) -> None:
    a, b = tmp_path / "a", tmp_path / "b"
    session_a = config_dir_for(session="fix", workspace=a, job_id="j1", resume=None)
    assert session_a == config_dir_for(session="fix", workspace=a, job_id="j2", resume=None)
    assert session_a != config_dir_for(session="fix", workspace=b, job_id="j1", resume=None)
    job1 = config_dir_for(session=None, workspace=a, job_id="j1", resume=None)
    assert job1 != config_dir_for(session=None, workspace=a, job_id="j2", resume=None)
    assert "sessions" in session_a.parts and "jobs" in job1.parts


def test_resume_without_a_session_finds_the_dir_holding_the_transcript(tmp_path: Path) -> None:
    first = config_dir_for(session=None, workspace=tmp_path, job_id="earlier", resume=None)
    transcript = first / "projects" / "-workspace" / "0b7c2f7e-1111-2222-3333-444455556666.jsonl"
    transcript.parent.mkdir(parents=True)
    transcript.write_text("{}\n")
    assert find_transcript("0b7c2f7e-1111-2222-3333-444455556666") == first
    assert config_dir_for(session=None, workspace=tmp_path, job_id="later",
                          resume="0b7c2f7e-1111-2222-3333-444455556666") == first
    assert find_transcript("../../etc/passwd") is None


def test_credentials_are_copied_0600_and_refreshed_tokens_come_back(
        host_claude: Path, tmp_path: Path) -> None:
    target = tmp_path / "cfg"
    prepared = prepare_config_dir(target, uid=os.getuid(), gid=os.getgid(), env={})
    copied = target / ".credentials.json"
    assert copied.read_text() == '{"token": "old"}'
    assert stat.S_IMODE(copied.stat().st_mode) == 0o600
    assert stat.S_IMODE(target.stat().st_mode) == 0o700
    assert (target / "CLAUDE.md").read_text() == "be brief"
    assert (target / "commands" / "review.md").read_text() == "review it"
    copied.write_text('{"token": "refreshed"}')
    prepared.finish()
    host = host_claude / ".credentials.json"
    assert host.read_text() == '{"token": "refreshed"}'
    assert stat.S_IMODE(host.stat().st_mode) == 0o600


def test_a_host_file_changed_meanwhile_is_not_overwritten(host_claude: Path,
                                                          tmp_path: Path) -> None:
    prepared = prepare_config_dir(tmp_path / "cfg", uid=None, gid=None, env={})
    (tmp_path / "cfg" / ".credentials.json").write_text('{"token": "sandbox"}')
    (host_claude / ".credentials.json").write_text('{"token": "user logged in again"}')
    prepared.finish()
    assert (host_claude / ".credentials.json").read_text() == '{"token": "user logged in again"}'


def test_an_api_key_in_the_environment_means_no_credentials_file(host_claude: Path,
                                                                 tmp_path: Path) -> None:
    prepare_config_dir(tmp_path / "cfg", uid=None, gid=None,
                       env={"ANTHROPIC_API_KEY": "sk-ant-xyz"})
    assert not (tmp_path / "cfg" / ".credentials.json").exists()
    source = credential_source({"ANTHROPIC_API_KEY": "sk-ant-secret-value"})
    assert source == "ANTHROPIC_API_KEY (environment)"
    assert "credentials.json" in credential_source({})


@pytest.mark.skipif(os.geteuid() != 0, reason="chown needs root")
def test_the_dir_belongs_to_the_sandbox_uid(host_claude: Path, tmp_path: Path) -> None:
    target = tmp_path / "cfg"
    prepare_config_dir(target, uid=4321, gid=4321, env={})
    for path in (target, target / ".credentials.json", target / "commands" / "review.md"):
        assert (path.stat().st_uid, path.stat().st_gid) == (4321, 4321)


def test_links_a_job_leaves_in_the_dir_are_never_followed_by_the_next_turn(
        host_claude: Path, tmp_path: Path) -> None:
    """The dir is writable inside the sandbox; the host's next copy must not write through a
    planted link, and a planted credentials link must not carry a host file to ~/.claude."""
    target = tmp_path / "cfg"
    prepare_config_dir(target, uid=None, gid=None, env={})
    outside = tmp_path / "outside"
    outside.mkdir()
    (outside / "notes.txt").write_text("mine\n")
    (outside / "review.md").write_text("mine too\n")
    secret = tmp_path / "id_ed25519"
    secret.write_text("PRIVATE KEY\n")
    (target / "CLAUDE.md").unlink()  # what a job could do inside the sandbox:
    (target / "CLAUDE.md").symlink_to(outside / "notes.txt")
    shutil.rmtree(target / "commands")
    (target / "commands").symlink_to(outside)
    (target / ".credentials.json").unlink()
    (target / ".credentials.json").symlink_to(secret)
    prepared = prepare_config_dir(target, uid=None, gid=None, env={})  # the next turn
    assert (outside / "notes.txt").read_text() == "mine\n"
    assert (outside / "review.md").read_text() == "mine too\n"
    assert not (target / "CLAUDE.md").is_symlink()
    assert (target / "CLAUDE.md").read_text() == "be brief"
    assert (target / "commands" / "review.md").read_text() == "review it"
    (target / ".credentials.json").unlink()
    (target / ".credentials.json").symlink_to(secret)
    prepared.finish()
    assert (host_claude / ".credentials.json").read_text() == '{"token": "old"}'
