"""Mount specs and env for the sandbox: what users type, what is refused and how it is said."""

from __future__ import annotations

import socket
from pathlib import Path

import pytest

from channelcoder.errors import ConfigError
from channelcoder.sandbox.container.mounts import Mount, check_env, parse_mount, parse_mounts


@pytest.fixture
def workspace(tmp_path: Path) -> Path:
    (tmp_path / "data").mkdir()
    (tmp_path / "data" / "in.txt").write_text("x")
    return tmp_path


def test_relative_host_paths_resolve_against_the_workspace(workspace: Path) -> None:
    mount = parse_mount("./data:/data:ro", workspace)
    assert mount == Mount(workspace / "data", "/data", read_only=True)
    assert mount.bind == f"{workspace / 'data'}:/data:ro"
    assert parse_mount("data:/srv/data", workspace).read_only is False


def test_tilde_expands_to_the_home_directory(workspace: Path,
                                             monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("HOME", str(workspace))
    assert parse_mount("~/data:/data:rw", workspace).host == workspace / "data"


@pytest.mark.parametrize(("spec", "words"), [
    ("data", "HOST:CONTAINER"),
    ("data:/d:ro:extra", "HOST:CONTAINER"),
    (":/data", "HOST:CONTAINER"),
    ("data:/data:rx", "unknown mode 'rx'"),
    ("missing:/data", "does not exist"),
    ("data:relative/path", "is not absolute"),
    ("data:/", "not allowed"),
    ("data:/x/../y", "not allowed"),
    ("data:/workspace", "used by the sandbox"),
    ("data:/channelcoder/claude", "used by the sandbox"),
    ("data:/proc/x", "system directory"),
])
def test_bad_specs_are_refused_with_a_reason(workspace: Path, spec: str, words: str) -> None:
    with pytest.raises(ConfigError) as caught:
        parse_mount(spec, workspace)
    assert words in caught.value.message
    assert repr(spec) in caught.value.message or spec in caught.value.message


def test_root_home_and_docker_socket_are_refused_unless_forced(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    home = tmp_path / "home"
    home.mkdir()
    monkeypatch.setenv("HOME", str(home))
    run = tmp_path / "run"
    run.mkdir()
    sock = socket.socket(socket.AF_UNIX)
    sock.bind(str(run / "docker.sock"))
    try:
        for spec, words in (("/:/host", "root directory"), ("~:/home-copy", "home directory"),
                            (f"{run}/docker.sock:/var/run/docker.sock", "Docker socket"),
                            (f"{run}:/run-copy", "Docker socket")):
            with pytest.raises(ConfigError) as caught:
                parse_mount(spec, tmp_path)
            assert words in caught.value.message
            assert caught.value.hint
            assert parse_mount(spec, tmp_path, force=True).container.startswith("/")
    finally:
        sock.close()


def test_the_engines_own_socket_directory_is_refused(tmp_path: Path) -> None:
    for candidate in (Path("/var/run/docker.sock"), Path("/run/docker.sock")):
        if candidate.exists():
            with pytest.raises(ConfigError, match="Docker socket"):
                parse_mount(f"{candidate.parent}:/x", tmp_path)
            return
    pytest.skip("no Docker socket on this machine")


def test_two_mounts_on_one_container_path_are_refused(workspace: Path) -> None:
    with pytest.raises(ConfigError, match="two mounts target /d"):
        parse_mounts(["data:/d", "data:/d:ro"], workspace)


def test_env_names_are_checked_and_values_never_printed() -> None:
    assert check_env({"FOO": "bar", "_X1": "1"}) == {"FOO": "bar", "_X1": "1"}
    for env, words in (({"1BAD": "s3cret-value"}, "invalid variable name"),
                       ({"BAD-NAME": "s3cret-value"}, "invalid variable name"),
                       ({"CLAUDE_CONFIG_DIR": "s3cret-value"}, "managed by channelcoder"),
                       ({"OK": "nul\0s3cret-value"}, "NUL")):
        with pytest.raises(ConfigError) as caught:
            check_env(env)
        assert words in caught.value.message
        assert "s3cret-value" not in caught.value.describe()
