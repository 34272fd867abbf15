"""What the sandbox is given: environment, hardening arguments, the --verbose line. No engine."""

from __future__ import annotations

import json
import os
import shlex
from pathlib import Path
from typing import Any

import pytest

from channelcoder.config import DockerOptions, RunOptions
from channelcoder.errors import ConfigError
from channelcoder.launch import LaunchSpec
from channelcoder.owner import owner_alive, owner_label
from channelcoder.redact import redact
from channelcoder.sandbox.container.mounts import Mount
from channelcoder.sandbox.container.process import SUPERVISE, ContainerSpec, create_args, run_line
from channelcoder.sandbox.engine.proxies import PROXY_VARS, proxy_env
from channelcoder.sandbox.manager import SandboxManager, labels_from_env, sandbox_user


def spec(tmp_path: Path, env: dict[str, str] | None = None) -> LaunchSpec:
    return LaunchSpec(argv=["claude", "-p", "--", "hi"], cwd=tmp_path, workspace=tmp_path,
                      options=RunOptions(docker=DockerOptions()), job_id="j1", env=env or {})


def test_the_environment_carries_credentials_proxies_and_sandbox_settings(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("ANTHROPIC_API_KEY", "sk-ant-from-the-host-1234567890")
    monkeypatch.setenv("HTTPS_PROXY", "http://proxy.example:3128")
    monkeypatch.setenv("UNRELATED_HOST_VAR", "not passed")
    options = DockerOptions(env={"MY_SETTING": "custom-value-123", "HOME": "/elsewhere"})
    env = SandboxManager().environment(spec(tmp_path, {"FROM_REQUEST": "1"}), options,
                                       uid=1000, ca=True)
    assert env["ANTHROPIC_API_KEY"] == "sk-ant-from-the-host-1234567890"
    assert env["HTTPS_PROXY"] == "http://proxy.example:3128"
    assert "UNRELATED_HOST_VAR" not in env
    assert env["FROM_REQUEST"] == "1" and env["MY_SETTING"] == "custom-value-123"
    assert env["HOME"] == "/elsewhere"  # the user's docker env comes last
    assert env["CLAUDE_CONFIG_DIR"] == "/channelcoder/claude"
    assert env["DISABLE_AUTOUPDATER"] == env["CLAUDE_CODE_DISABLE_NONESSENTIAL_TRAFFIC"] == "1"
    assert (env["GIT_CONFIG_COUNT"], env["GIT_CONFIG_KEY_0"], env["GIT_CONFIG_VALUE_0"]) == \
        ("1", "safe.directory", "*")
    assert env["NODE_EXTRA_CA_CERTS"] == "/channelcoder/ca.crt"
    assert "IS_SANDBOX" not in env
    assert SandboxManager().environment(spec(tmp_path), DockerOptions(), uid=0,
                                        ca=False)["IS_SANDBOX"] == "1"


def test_the_verbose_line_redacts_every_docker_env_value_and_keys(tmp_path: Path,
                                                                  monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("CLAUDE_CODE_OAUTH_TOKEN", "oauth-token-value-abcdef")
    options = DockerOptions(env={"PLAIN_NAME": "looks-harmless-but-private"})
    env = SandboxManager().environment(spec(tmp_path), options, uid=0, ca=False)
    line = run_line(ContainerSpec(image="img", argv=["claude", "-p", "--", "hi"], env=env,
                                  mounts=(Mount(tmp_path, "/workspace"),), user="0:0",
                                  memory=1 << 30, memory_text="1g", cpus=1.0, pids_limit=64))
    assert "looks-harmless-but-private" not in line and "oauth-token-value" not in line
    assert "-e PLAIN_NAME=***" in line and "-e CLAUDE_CODE_OAUTH_TOKEN=***" in line
    assert "-e GIT_CONFIG_KEY_0=safe.directory" in line  # a git setting's name, not a secret
    assert line.startswith("docker run --rm --init -i --user 0:0 --cap-drop ALL")
    assert f"-v {tmp_path}:/workspace:rw" in line
    assert line.endswith(f"--entrypoint sh img -c {shlex.quote(SUPERVISE)} sh claude -p -- hi")


def test_create_args_harden_the_container(tmp_path: Path) -> None:
    container = ContainerSpec(image="img", argv=["claude", "-p"], env={"A": "1"},
                              mounts=(Mount(tmp_path, "/workspace"),
                                      Mount(tmp_path, "/data", read_only=True)),
                              user="1000:1000", memory=256 << 20, memory_text="256m", cpus=0.5,
                              pids_limit=64, network="none", labels={"k": "v"},
                              tmpfs={"/tmp": "rw,exec"})
    args = create_args(container)
    host = args["HostConfig"]
    assert host["CapDrop"] == ["ALL"] and host["SecurityOpt"] == ["no-new-privileges"]
    assert host["Init"] is True and host["ReadonlyRootfs"] is True and host["AutoRemove"] is True
    assert (host["PidsLimit"], host["Memory"], host["MemorySwap"], host["NanoCpus"]) == \
        (64, 256 << 20, 256 << 20, 500_000_000)
    assert host["NetworkMode"] == "none" and host["Tmpfs"] == {"/tmp": "rw,exec"}
    assert host["Binds"] == [f"{tmp_path}:/workspace:rw", f"{tmp_path}:/data:ro"]
    assert "Privileged" not in host and "CapAdd" not in host
    assert args["Entrypoint"] == ["sh"] and args["Cmd"] == ["-c", SUPERVISE, "sh", "claude", "-p"]
    assert args["Env"] == ["A=1"]
    assert args["OpenStdin"] is True and args["StdinOnce"] is True and args["Tty"] is False
    assert (args["User"], args["WorkingDir"], args["Labels"]) == ("1000:1000", "/workspace",
                                                                  {"k": "v"})


def test_the_user_option(monkeypatch: pytest.MonkeyPatch) -> None:
    assert sandbox_user(DockerOptions()) == (os.getuid(), os.getgid(),
                                             f"{os.getuid()}:{os.getgid()}")
    assert sandbox_user(DockerOptions(user="1000:1001")) == (1000, 1001, "1000:1001")
    assert sandbox_user(DockerOptions(user="1000")) == (1000, 1000, "1000")
    assert sandbox_user(DockerOptions(user="root")) == (0, 0, "root")
    assert sandbox_user(DockerOptions(user="claude"))[:2] == (None, None)
    with pytest.raises(ConfigError, match="not UID"):
        sandbox_user(DockerOptions(user="a b"))


def test_owner_labels_tell_dead_owners_from_live_ones() -> None:
    mine = owner_label()
    assert owner_alive(mine)
    host, pid, start = mine.split("|")
    assert not owner_alive(f"{host}|{pid}|{int(start) + 1}")  # pid reused by another process
    assert not owner_alive(f"{host}|4194303|1")
    assert owner_alive(f"another-host|{pid}|1")  # not ours to judge


def test_extra_labels_come_from_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("CHANNELCODER_DOCKER_LABELS", "team=core, run=42,broken")
    assert labels_from_env() == {"team": "core", "run": "42"}


def _docker_config(directory: Path, proxies: dict[str, Any]) -> Path:
    directory.mkdir(parents=True, exist_ok=True)
    (directory / "config.json").write_text(json.dumps({"proxies": proxies}))
    return directory


def test_proxies_of_the_docker_config_reach_the_sandbox_as_the_docker_cli_hands_them_out(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    for name in PROXY_VARS:
        monkeypatch.delenv(name, raising=False)
    config = _docker_config(tmp_path / "docker", {
        "default": {"httpProxy": "http://bob:pr0xy-s3cret@proxy.example:3128",
                    "noProxy": "localhost,.internal"},
        "tcp://build-box:2376": {"httpsProxy": "http://build-proxy:8080"}})
    monkeypatch.setenv("DOCKER_CONFIG", str(config))
    env = proxy_env(None)
    assert env["HTTP_PROXY"] == env["http_proxy"] == "http://bob:pr0xy-s3cret@proxy.example:3128"
    assert env["NO_PROXY"] == env["no_proxy"] == "localhost,.internal"
    assert proxy_env("tcp://build-box:2376") == {"HTTPS_PROXY": "http://build-proxy:8080",
                                                 "https_proxy": "http://build-proxy:8080"}
    monkeypatch.setenv("HTTP_PROXY", "http://host-proxy:3128")  # the host's own wins
    assert proxy_env(None)["HTTP_PROXY"] == "http://host-proxy:3128"
    options = DockerOptions(env={"HTTP_PROXY": "http://mine:1"})  # and the user's docker.env
    assert SandboxManager().environment(spec(tmp_path), options, uid=1000,
                                        ca=False)["HTTP_PROXY"] == "http://mine:1"
    shown = redact(f"-e http_proxy={env['http_proxy']}")
    assert "pr0xy-s3cret" not in shown and "proxy.example:3128" in shown

