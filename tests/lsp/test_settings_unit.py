"""Editor settings: forgiving, each problem named once (pure code)."""

from __future__ import annotations

from channelcoder.lsp.settings import merge_settings, parse_settings, with_editor_defaults


def test_null_means_unset_and_bad_values_are_named() -> None:
    parsed = parse_settings({"model": None, "streamEvents": None, "timeout": "soon",
                             "docker": {"memory": "lots", "network": "host"}, "bogus": 1,
                             "maxTurns": 3}, "initializationOptions")
    assert parsed.layer == {"docker": {"network": "host"}, "max_turns": 3}
    assert parsed.server.stream_events is False
    assert len(parsed.warnings) == 3
    assert any("'timeout'" in w for w in parsed.warnings)
    assert any("docker.memory" in w for w in parsed.warnings)
    assert any("'bogus'" in w for w in parsed.warnings)


def test_wrapped_section_is_accepted_with_one_warning() -> None:
    parsed = parse_settings({"channelcoder": {"streamEvents": True}}, "initializationOptions")
    assert parsed.server.stream_events is True and len(parsed.warnings) == 1


def test_later_sources_win_and_defaults_sit_below_the_project_file() -> None:
    merged = merge_settings(parse_settings({"model": "a", "streamEvents": True}, "init"),
                            parse_settings({"model": "b"}, "configuration"))
    assert merged.layer == {"model": "b"} and merged.server.stream_events is True
    assert with_editor_defaults({}, {}) == {"docker": True, "apply": "propose"}
    assert with_editor_defaults({}, {"apply": "direct", "docker": False}) == {}
    assert with_editor_defaults({"docker": {"network": "host"}}, {}) == {
        "docker": {"network": "host"}, "apply": "propose"}


def test_every_invalid_value_of_a_table_is_named_as_the_user_wrote_it() -> None:
    """A mistyped docker.network once became the default silently while docker.memory was
    reported; each one is reported now, in camelCase, and the valid keys are kept."""
    parsed = parse_settings({"docker": {"image": "mine:1", "memory": "lots", "network": "brige",
                                        "keepWarm": "x", "netwrk": "proxy"},
                             "appendSystem": 3, "modle": "x"}, "initializationOptions")
    assert parsed.layer == {"docker": {"image": "mine:1"}}
    assert sorted(parsed.warnings) == sorted([
        "setting 'docker.memory' must be a size such as 512m or 4g, got 'lots'; using the default",
        "setting 'docker.network' must be one of proxy, open, none, host, got 'brige'; "
        "using the default",
        "setting 'docker.keepWarm' must be a positive number, got 'x'; using the default",
        "setting 'appendSystem' must be a string, got int; using the default",
        *[w for w in parsed.warnings if w.startswith("unknown setting 'docker.netwrk' (ignored)")],
        *[w for w in parsed.warnings if w.startswith("unknown setting 'modle' (ignored)")],
    ])
    assert len(parsed.warnings) == 6
    assert all("_" not in w.split("known:")[-1] for w in parsed.warnings if "known:" in w)
