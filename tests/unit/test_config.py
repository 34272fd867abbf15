"""Option validation, precedence and trust filtering."""

from __future__ import annotations

from pathlib import Path

import pytest

from channelcoder.api import build_request
from channelcoder.config import (
    DockerOptions,
    build_options,
    build_options_forgiving,
    merge_layers,
    normalize_layer,
    split_rules,
    untrusted_view,
)
from channelcoder.errors import ConfigError
from channelcoder.trust import set_trusted


def test_camel_case_and_seed_aliases_are_accepted() -> None:
    layer = normalize_layer({"allowedTools": ["Read"], "systemPrompt": "s", "maxTurns": 2,
                             "appendSystemPrompt": "a", "continue": True}, "test")
    options = build_options(layer)
    assert options.tools == ("Read",) and options.system == "s" and options.max_turns == 2
    assert options.append_system == "a" and options.continue_


@pytest.mark.parametrize(("layer", "key"), [
    ({"max_turns": "many"}, "max_turns"),
    ({"max_turns": 0}, "max_turns"),
    ({"permission_mode": "yolo"}, "permission_mode"),
    ({"timeout": -1}, "timeout"),
    ({"docker": {"network": "internet"}}, "docker.network"),
    ({"docker": {"memory": "lots"}}, "docker.memory"),
    ({"docker": {"env": {"1BAD": "x"}}}, "docker.env"),
    ({"apply": "yes"}, "apply"),
])
def test_invalid_values_name_the_key(layer: dict[str, object], key: str) -> None:
    with pytest.raises(ConfigError) as info:
        build_options(layer)
    assert key in info.value.message


def test_unknown_keys_are_named() -> None:
    with pytest.raises(ConfigError, match="unknown option 'modle'"):
        normalize_layer({"modle": "x"}, "settings")
    with pytest.raises(ConfigError, match="'imagee'"):
        normalize_layer({"docker": {"imagee": "x"}}, "settings")


def test_forgiving_loader_keeps_good_values_and_warns_once_per_bad_one() -> None:
    options, warnings = build_options_forgiving(
        {"model": "opus", "max_turns": "x", "docker": {"memory": "1g", "cpus": "lots"}})
    assert options.model == "opus" and options.max_turns is None
    assert options.docker is not None and options.docker.memory == "1g"
    assert options.docker.cpus == DockerOptions().cpus
    assert len(warnings) == 2 and any("max_turns" in w for w in warnings)


def test_precedence_explicit_over_front_matter_over_settings_over_project() -> None:
    merged = merge_layers({"model": "explicit"}, {"model": "front", "max_turns": 2},
                          {"max_turns": 3, "docker": {"memory": "1g"}},
                          {"docker": {"memory": "2g", "cpus": 1}, "timeout": 5})
    options = build_options(merged)
    assert options.model == "explicit" and options.max_turns == 2 and options.timeout == 5
    assert options.docker == DockerOptions(memory="1g", cpus=1.0)


def test_untrusted_files_cannot_weaken_isolation() -> None:
    kept, dropped = untrusted_view({
        "docker": {"mounts": ["/:/host"], "env": {"A": "1"}, "network": "host", "memory": "1g"},
        "mcp_config": "{}", "model": "opus"})
    assert kept == {"docker": {"memory": "1g"}, "model": "opus"}
    assert set(dropped) == {"docker.mounts", "docker.env", "docker.network", "mcp_config"}
    assert untrusted_view({"docker": False})[1] == ["docker=false"]


def test_project_file_applies_only_when_trusted(tmp_path: Path) -> None:
    (tmp_path / ".channelcoder").mkdir()
    (tmp_path / ".channelcoder/config.toml").write_text(
        'model = "haiku"\nmcp_config = "{}"\n[docker]\nnetwork = "host"\nmemory = "1g"\n')
    request = build_request("hi", workspace=tmp_path)
    assert request.options.model == "haiku"
    assert request.options.mcp_config is None
    assert request.options.docker is not None and request.options.docker.network == "proxy"
    assert request.notices and "not trusted" in request.notices[0]
    set_trusted(tmp_path)
    trusted = build_request("hi", workspace=tmp_path)
    assert trusted.options.docker is not None and trusted.options.docker.network == "host"
    assert not trusted.notices


def test_rules_split_on_commas_and_spaces_but_not_inside_parentheses() -> None:
    assert split_rules("Read, Bash(git log:*) Edit") == ["Read", "Bash(git log:*)", "Edit"]


def test_docker_pull_defaults_to_missing_and_comes_from_every_source(tmp_path: Path) -> None:
    from channelcoder.cli.main import build_parser, run_layer
    from channelcoder.lsp.settings import parse_settings

    assert DockerOptions().pull == "missing"
    args = build_parser().parse_args(["run", "--pull", "never", "hi"])
    assert run_layer(args)["docker"] == {"pull": "never"}
    settings = parse_settings({"docker": {"pull": "always"}}, "test")
    assert not settings.warnings
    assert build_options(settings.layer).docker == DockerOptions(pull="always")
    (tmp_path / ".channelcoder").mkdir()
    (tmp_path / ".channelcoder/config.toml").write_text('[docker]\npull = "never"\n')
    request = build_request("hi", workspace=tmp_path, flags={"docker": {}})
    assert request.options.docker is not None and request.options.docker.pull == "never"
    explicit = build_request("hi", workspace=tmp_path, flags={"docker": {"pull": "always"}})
    assert explicit.options.docker is not None and explicit.options.docker.pull == "always"


@pytest.mark.parametrize("value", ["sometimes", "", 1, True, None])
def test_a_bad_docker_pull_names_the_key_and_the_choices(value: object) -> None:
    from channelcoder.lsp.settings import parse_settings

    with pytest.raises(ConfigError) as info:
        build_options({"docker": {"pull": value if value is not None else "Never!"}})
    assert "docker.pull" in info.value.message
    assert "missing, never, always" in info.value.message
    assert "never: only use local images" in info.value.hint
    settings = parse_settings({"docker": {"pull": "sometimes", "memory": "1g"}}, "test")
    assert settings.warnings and "docker.pull" in settings.warnings[0]
    assert build_options(settings.layer).docker == DockerOptions(memory="1g")


def test_the_pull_flag_takes_only_the_three_policies(capsys: pytest.CaptureFixture[str]) -> None:
    from channelcoder.cli.main import main

    assert main(["run", "--pull", "sometimes", "hi"]) == 2
    err = capsys.readouterr().err
    assert "--pull" in err and "'missing', 'never', 'always'" in err


def test_an_untrusted_workspace_cannot_widen_the_egress_proxys_allowlist(tmp_path: Path) -> None:
    from channelcoder.api import build_request
    from channelcoder.trust import set_trusted

    (tmp_path / ".channelcoder").mkdir()
    (tmp_path / ".channelcoder" / "config.toml").write_text(
        '[docker]\nnetwork = "open"\nnetwork_allow = ["evil.example.com", "registries"]\n'
        "network_ask = false\n")
    built = build_request("hi", flags={"docker": {"network": "proxy"}}, workspace=tmp_path)
    assert built.options.docker is not None
    assert built.options.docker.network == "proxy"
    assert built.options.docker.network_allow == ()
    assert built.options.docker.network_ask is True
    (notice,) = built.notices
    assert "docker.network_allow" in notice and "not trusted" in notice
    set_trusted(tmp_path)
    trusted = build_request("hi", flags={"docker": {"network": "proxy"}}, workspace=tmp_path)
    assert trusted.options.docker is not None
    assert trusted.options.docker.network_allow == ("evil.example.com", "registries")
    assert trusted.notices == []
