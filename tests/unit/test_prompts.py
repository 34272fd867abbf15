"""Prompt files: front matter, the input schema, interpolation, and option precedence."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from channelcoder.api import build_request
from channelcoder.errors import PromptError
from channelcoder.prompts import load_prompt_file, parse_prompt, render
from channelcoder.templates import interpolate

DATA: dict[str, Any] = {
    "name": "Ada", "user": {"name": "Grace", "langs": ["py", "rs"]}, "urgent": True,
    "draft": False, "level": "high", "count": 3, "empty": "", "off": "false", "none": None,
    "items": ["a", "b"], "zero": 0,
}


@pytest.mark.parametrize(("template", "expected"), [
    ("Hello {name}", "Hello Ada"),
    ("{ name }!", "Ada!"),
    ("{user.name} writes {user.langs.0}", "Grace writes py"),
    ("{urgent ? \"NOW\" : \"later\"}", "NOW"),
    ("{draft ? 'draft' : 'final'}", "final"),
    ("{!draft ? \"ship it\" : \"wait\"}", "ship it"),
    ("{!!urgent ? yes : no}", "yes"),
    ("{level == \"high\" ? \"H\" : \"L\"}", "H"),
    ("{level != 'high' ? 'not high' : 'high'}", "high"),
    ("{level === \"high\" ? 1 : 0}", "1"),
    ("{count == 3 ? \"three\" : \"other\"}", "three"),
    ("{count == \"3\" ? \"loose\" : \"strict\"}", "loose"),
    ("{missing ? \"set\" : \"unset\"}", "unset"),
    ("{empty ? a : b}", "b"),
    ("{off ? 'on' : 'off'}", "off"),
    ("{zero ? 'nonzero' : 'zero'}", "zero"),
    ("{urgent ? name : level}", "Ada"),
    ("{urgent ? \"a ? b : c\" : \"x\"}", "a ? b : c"),
    ("{urgent}/{draft}/{none}", "true/false/"),
    ("{items}", '[\n  "a",\n  "b"\n]'),
    ("\\{name} is literal", "{name} is literal"),
    ("keep ${HOME} and ${name}", "keep ${HOME} and ${name}"),
    ('json {"a": 1} stays', 'json {"a": 1} stays'),
    ("code { return 1; } stays", "code { return 1; } stays"),
    ("{} and { } stay", "{} and { } stay"),
    ("unclosed {name", "unclosed {name"),
    ("{name}{name}", "AdaAda"),
    ("héllo {user.name} ✓", "héllo Grace ✓"),
])
def test_interpolation(template: str, expected: str) -> None:
    assert interpolate(template, DATA) == expected


@pytest.mark.parametrize("template", ["{nmae}", "{user.nmae}", "Dear {who},"])
def test_a_name_without_value_is_an_error_naming_it(template: str) -> None:
    with pytest.raises(PromptError) as info:
        interpolate(template, DATA)
    name = template[template.index("{") + 1:template.index("}")]
    assert f"{{{name}}}" in info.value.message
    assert "-d" in info.value.hint and "\\{" in info.value.hint


def test_a_declared_optional_input_left_out_is_empty() -> None:
    assert interpolate("[{note}]", {}, declared={"note"}) == "[]"


def write(tmp_path: Path, text: str, name: str = "task.md") -> Path:
    path = tmp_path / name
    path.write_text(text, encoding="utf-8")
    return path


FULL = """---
title: Review a change
description: Reviews one file
systemPrompt: You review code.
appendSystemPrompt: Be brief.
allowedTools: [Read, "Bash(git diff:*)"]
disallowedTools: Write
mcpConfig: {mcpServers: {}}
model: claude-test
maxTurns: 4
docker: {network: host}
worktree: {branch: review/x, keep: false}
input:
  file: string
  focus?: string
  level: {type: string, enum: [low, high], default: low}
  count: {type: number, optional: true}
  tags: string[]
  strict: boolean
---
Review {file} at level {level}{focus ? " focusing on " : ""}{focus}.
{strict ? "Be strict." : "Be kind."} Tags: {tags}
"""


def test_full_front_matter_maps_every_key(tmp_path: Path) -> None:
    prompt = load_prompt_file(write(tmp_path, FULL))
    assert prompt.title == "Review a change" and prompt.description == "Reviews one file"
    layer = prompt.layer
    assert layer["system"] == "You review code." and layer["append_system"] == "Be brief."
    assert layer["tools"] == ["Read", "Bash(git diff:*)"] and layer["disallowed_tools"] == "Write"
    assert layer["model"] == "claude-test" and layer["max_turns"] == 4
    assert layer["docker"] == {"network": "host"}
    assert layer["worktree"] == {"branch": "review/x", "keep": False}
    assert set(prompt.schema) == {"file", "focus", "level", "count", "tags", "strict"}
    text = render(prompt, {"file": "a.py", "tags": "x,y", "strict": "yes"})
    assert text.startswith("Review a.py at level low.")
    assert 'Be strict. Tags: [\n  "x",\n  "y"\n]' in text


@pytest.mark.parametrize(("data", "message"), [
    ({"tags": "x", "strict": "true"}, "missing required input 'file'"),
    ({"file": "a", "tags": "x", "strict": "maybe"}, "input 'strict' must be true or false"),
    ({"file": "a", "tags": "x", "strict": "1", "level": "mid"},
     "input 'level' must be one of low, high"),
    ({"file": "a", "tags": "x", "strict": "1", "count": "many"}, "input 'count' must be a number"),
    ({"file": "a", "tags": "x", "strict": "1", "colour": "red"}, "unknown input 'colour'"),
    ({"file": ["a"], "tags": "x", "strict": "1"}, "input 'file' must be a string"),
])
def test_schema_violations_name_the_input(tmp_path: Path, data: dict[str, Any],
                                          message: str) -> None:
    prompt = load_prompt_file(write(tmp_path, FULL))
    with pytest.raises(PromptError) as info:
        render(prompt, data)
    assert message in info.value.message and str(tmp_path / "task.md") in info.value.message


def test_dash_d_text_is_coerced_to_the_declared_type(tmp_path: Path) -> None:
    prompt = load_prompt_file(write(tmp_path, FULL))
    text = render(prompt, {"file": "a", "tags": '["p", "q"]', "strict": "no", "count": "2.5"})
    assert "Be kind." in text and '"q"' in text


@pytest.mark.parametrize(("front", "message", "hint"), [
    ("colour: red", "unknown option 'colour'", "front matter keys"),
    ("systemprompt: x", "unknown option 'systemprompt'", "systemPrompt"),
    ("maxTurns: -2", "option 'max_turns' must be a positive whole number", ""),
    ("docker: {netwrk: host}", "unknown option 'netwrk'", ""),
    ("permissionMode: yolo", "option 'permission_mode' must be one of", ""),
    ("title: [1, 2]", "'title' must be text", ""),
    ("input: [a, b]", "'input' must map variable names", ""),
    ("input: {x: strng}", "input 'x' has unknown type 'strng'", "types:"),
    ("input: {x: {type: string, requird: true}}", "input 'x' has unknown key 'requird'", ""),
    ("input: {x: {type: number, default: abc}}", "default of input 'x' must be a number", ""),
    ("input: {'bad name': string}", "input 'bad name' is not a valid variable name", ""),
])
def test_front_matter_errors_name_the_key(tmp_path: Path, front: str, message: str,
                                          hint: str) -> None:
    with pytest.raises(PromptError) as info:
        load_prompt_file(write(tmp_path, f"---\n{front}\n---\nbody\n"))
    assert message in info.value.message
    assert hint in info.value.hint


@pytest.mark.parametrize(("text", "message"), [
    ("---\ntitle: x\nbody without end\n", "no closing '---'"),
    ("---\n: : :\n---\nbody\n", "not valid YAML"),
    ("---\n- a\n- b\n---\nbody\n", "must be a mapping"),
])
def test_broken_front_matter_is_a_clear_error(tmp_path: Path, text: str, message: str) -> None:
    with pytest.raises(PromptError, match=message):
        parse_prompt(text, tmp_path / "p.md")


def test_a_file_without_front_matter_is_all_body(tmp_path: Path) -> None:
    prompt = load_prompt_file(write(tmp_path, "Just do {thing}.\n"))
    assert prompt.layer == {} and render(prompt, {"thing": "it"}) == "Just do it."


def test_system_prompt_file_is_found_beside_the_prompt_file(tmp_path: Path) -> None:
    (tmp_path / "prompts").mkdir()
    (tmp_path / "prompts" / "reviewer.md").write_text("You are a strict reviewer.")
    prompt = load_prompt_file(write(tmp_path / "prompts", "---\nsystemPrompt: reviewer.md\n---\nGo"))
    assert prompt.layer["system"] == str((tmp_path / "prompts" / "reviewer.md").resolve())


def test_unreadable_prompt_file(tmp_path: Path) -> None:
    (tmp_path / "bin.md").write_bytes(b"\xff\xfe\x00bad")
    with pytest.raises(PromptError, match="cannot read the prompt file"):
        load_prompt_file(tmp_path / "bin.md")


# -- precedence: explicit > front matter > project file > defaults ------------------------------


def test_explicit_options_beat_front_matter_beat_the_project_file(tmp_path: Path) -> None:
    (tmp_path / ".channelcoder").mkdir()
    (tmp_path / ".channelcoder" / "config.toml").write_text(
        'model = "from-project"\nmax_turns = 9\nappend_system = "project"\n')
    prompt = write(tmp_path, "---\nmodel: from-front\nmaxTurns: 5\nsystemPrompt: front\n---\nGo")
    request = build_request(prompt, flags={"model": "from-flag"}, workspace=tmp_path,
                            trusted=True)
    options = request.options
    assert options.model == "from-flag"
    assert options.max_turns == 5 and options.system == "front"
    assert options.append_system == "project"


def test_untrusted_front_matter_cannot_weaken_isolation(tmp_path: Path) -> None:
    prompt = write(tmp_path, "---\nmodel: m\ndocker: {network: host, mounts: ['/:/host']}\n"
                             "mcpConfig: {mcpServers: {}}\n---\nGo")
    request = build_request(prompt, workspace=tmp_path, trusted=False)
    assert request.options.model == "m"
    assert request.options.docker is not None and request.options.docker.network == "proxy"
    assert request.options.docker.mounts == () and request.options.mcp_config is None
    assert any("docker.network" in n and "not trusted" in n for n in request.notices)


def test_inline_prompt_is_interpolated_only_with_data(tmp_path: Path) -> None:
    assert build_request("Use {x}", workspace=tmp_path).prompt == "Use {x}"
    assert build_request("Use {x}", data={"x": "y"}, workspace=tmp_path).prompt == "Use y"
    with pytest.raises(PromptError, match=r"\{z\}"):
        build_request("Use {z}", data={"x": "y"}, workspace=tmp_path)
