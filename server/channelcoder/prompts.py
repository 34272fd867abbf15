"""Prompt files: Markdown with YAML front matter, an `input` schema, and `{var}` interpolation.

A prompt file sets run options in its front matter with ChannelCoder's names as aliases
(`systemPrompt`, `allowedTools`, `mcpConfig`, …), plus three keys of its own:
`title` (shown by the editors), `description`, and `input` — the variables it takes:

    input:
      task: string                       # required
      files?: string[]                   # optional (trailing ?)
      level: {type: string, enum: [low, high], default: low}
      count: {type: number, optional: true}

The body is interpolated with `render()`; the expression language lives in `templates.py`.
Unknown keys, bad option values and schema violations are `PromptError`s naming the key.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from .config import build_options, normalize_layer
from .errors import ConfigError, PromptError
from .templates import interpolate

PROMPT_ONLY_KEYS = ("title", "description", "input")
TYPES = ("string", "number", "integer", "boolean", "array", "object", "any")
_TYPE_ALIASES = {"str": "string", "bool": "boolean", "int": "integer", "float": "number",
                 "list": "array", "dict": "object"}
_FIELD_KEYS = {"type", "optional", "required", "default", "enum", "description", "nullable"}


@dataclass(frozen=True)
class InputField:
    """One declared input variable."""

    name: str
    type: str = "string"
    item_type: str | None = None
    optional: bool = False
    default: Any = None
    has_default: bool = False
    enum: tuple[Any, ...] = ()
    description: str = ""


@dataclass
class PromptFile:
    path: Path
    body: str
    title: str | None = None
    description: str | None = None
    layer: dict[str, Any] = field(default_factory=dict)
    schema: dict[str, InputField] = field(default_factory=dict)


def split_front_matter(text: str, where: str) -> tuple[dict[str, Any], str]:
    if text.startswith("\ufeff"):
        text = text[1:]
    if not text.startswith("---"):
        return {}, text
    lines = text.splitlines(keepends=True)
    if lines[0].strip() != "---":
        return {}, text
    for index in range(1, len(lines)):
        if lines[index].strip() == "---":
            raw = "".join(lines[1:index])
            try:
                data = yaml.safe_load(raw) or {}
            except yaml.YAMLError as exc:
                raise PromptError(f"{where}: the front matter is not valid YAML ({exc})",
                                  hint="check the lines between the two '---'") from exc
            if not isinstance(data, dict):
                raise PromptError(f"{where}: the front matter must be a mapping of keys",
                                  hint="e.g. 'title: Review' on its own line")
            return data, "".join(lines[index + 1:])
    raise PromptError(f"{where}: the front matter has no closing '---'",
                      hint="end the front matter with a line holding only '---'")


def load_prompt_file(path: Path) -> PromptFile:
    """Read and validate a prompt file. Raises PromptError naming the offending key."""
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise PromptError(f"cannot read the prompt file {path}: {exc}",
                          hint="check the path and that the file is UTF-8 text") from exc
    return parse_prompt(text, path)


def parse_prompt(text: str, path: Path) -> PromptFile:
    where = str(path)
    front, body = split_front_matter(text, where)
    title = _optional_str(front.pop("title", None), "title", where)
    description = _optional_str(front.pop("description", None), "description", where)
    schema = parse_schema(front.pop("input", None), where)
    try:
        layer = normalize_layer(front, f"{where} front matter")
        build_options(layer)
    except ConfigError as exc:
        hint = exc.hint
        if exc.message.startswith("unknown option"):
            hint = ("front matter keys: " + ", ".join(PROMPT_ONLY_KEYS) + ", and run options "
                    "such as systemPrompt, allowedTools, model, docker, worktree")
        raise PromptError(f"{where}: {exc.message}", hint=hint) from exc
    _resolve_relative_files(layer, path.parent)
    return PromptFile(path=path, body=body.strip("\n"), title=title, description=description,
                      layer=layer, schema=schema)


def _optional_str(value: Any, key: str, where: str) -> str | None:
    if value is None or isinstance(value, str):
        return value
    raise PromptError(f"{where}: '{key}' must be text, got {type(value).__name__}")


def _resolve_relative_files(layer: dict[str, Any], directory: Path) -> None:
    """`systemPrompt: reviewer.md` means the file beside the prompt file, when it exists there."""
    for key in ("system", "append_system"):
        value = layer.get(key)
        if isinstance(value, str) and value.endswith((".md", ".txt")) and "\n" not in value:
            candidate = directory / value
            if not Path(value).is_absolute() and candidate.is_file():
                layer[key] = str(candidate.resolve())


# ---------------------------------------------------------------------------------------------
# The input schema


def parse_schema(raw: Any, where: str) -> dict[str, InputField]:
    if raw is None:
        return {}
    if not isinstance(raw, Mapping):
        raise PromptError(f"{where}: 'input' must map variable names to types",
                          hint="e.g.  input: {task: string, 'files?': 'string[]'}")
    fields: dict[str, InputField] = {}
    for raw_name, spec in raw.items():
        name = str(raw_name)
        optional = name.endswith("?")
        name = name.rstrip("?")
        if not name.isidentifier():
            raise PromptError(f"{where}: input '{raw_name}' is not a valid variable name",
                              hint="use letters, digits and _ (not starting with a digit)")
        fields[name] = _parse_field(name, spec, optional, where)
    return fields


def _parse_field(name: str, spec: Any, optional: bool, where: str) -> InputField:
    if spec is None:
        spec = "string"
    if isinstance(spec, str):
        kind, item = _parse_type(spec, name, where)
        return InputField(name, kind, item, optional)
    if not isinstance(spec, Mapping):
        raise PromptError(f"{where}: input '{name}' must be a type name or a table",
                          hint="e.g. 'string', 'number[]' or {type: string, default: x}")
    unknown = sorted(str(k) for k in spec if k not in _FIELD_KEYS)
    if unknown:
        raise PromptError(f"{where}: input '{name}' has unknown key '{unknown[0]}'",
                          hint="input keys: " + ", ".join(sorted(_FIELD_KEYS)))
    kind, item = _parse_type(str(spec.get("type", "string")), name, where)
    enum = spec.get("enum", ())
    if not isinstance(enum, list | tuple):
        raise PromptError(f"{where}: input '{name}': 'enum' must be a list of values")
    optional = optional or bool(spec.get("optional", False)) or spec.get("required") is False
    field_ = InputField(name, kind, item, optional, spec.get("default"), "default" in spec,
                        tuple(enum), str(spec.get("description", "")))
    if field_.has_default and field_.default is not None:
        _check_value(field_, field_.default, f"{where}: the default of input '{name}'")
    return field_


def _parse_type(text: str, name: str, where: str) -> tuple[str, str | None]:
    kind = text.strip().lower()
    item: str | None = None
    if kind.endswith("[]"):
        item, kind = _TYPE_ALIASES.get(kind[:-2], kind[:-2]), "array"
        if item not in TYPES:
            raise PromptError(f"{where}: input '{name}' has unknown type '{text}'",
                              hint="types: " + ", ".join(TYPES) + " (and TYPE[] for lists)")
    kind = _TYPE_ALIASES.get(kind, kind)
    if kind not in TYPES:
        raise PromptError(f"{where}: input '{name}' has unknown type '{text}'",
                          hint="types: " + ", ".join(TYPES) + " (and TYPE[] for lists)")
    return kind, item


def validate_input(schema: Mapping[str, InputField], data: Mapping[str, Any],
                   where: str) -> dict[str, Any]:
    """Check `data` against the schema: defaults filled in, text from `-d` coerced to the type."""
    if not schema:
        return dict(data)
    unknown = sorted(set(data) - set(schema))
    if unknown:
        raise PromptError(f"{where}: unknown input '{unknown[0]}'",
                          hint="this prompt takes: " + ", ".join(schema))
    out: dict[str, Any] = {}
    for name, spec in schema.items():
        if name in data and data[name] is not None:
            out[name] = _check_value(spec, data[name], f"{where}: input '{name}'")
        elif spec.has_default:
            out[name] = spec.default
        elif not spec.optional:
            raise PromptError(f"{where}: missing required input '{name}'",
                              hint=f"pass it with -d {name}=VALUE (data={{'{name}': ...}})")
    return out


def _check_value(spec: InputField, value: Any, what: str) -> Any:
    value = _coerce(spec.type, value, what, spec.item_type)
    if spec.enum and value not in spec.enum:
        allowed = ", ".join(str(v) for v in spec.enum)
        raise PromptError(f"{what} must be one of {allowed}, got {value!r}")
    return value


def _coerce(kind: str, value: Any, what: str, item: str | None = None) -> Any:
    if kind == "any":
        return value
    if kind == "string":
        if isinstance(value, str):
            return value
        if isinstance(value, int | float) and not isinstance(value, bool):
            return str(value)
    elif kind in ("number", "integer"):
        number = _number(value)
        if number is not None and (kind == "number" or float(number).is_integer()):
            return int(number) if kind == "integer" else number
    elif kind == "boolean":
        if isinstance(value, bool):
            return value
        if isinstance(value, str) and value.lower() in ("true", "false", "yes", "no", "1", "0"):
            return value.lower() in ("true", "yes", "1")
    elif kind == "array":
        if isinstance(value, str):
            value = _split_list(value)
        if isinstance(value, list | tuple):
            return [_coerce(item or "any", v, f"{what}[{i}]") for i, v in enumerate(value)]
    elif kind == "object" and isinstance(value, Mapping):
        return dict(value)
    raise PromptError(f"{what} must be {_article(kind)}, got {value!r}")


def _number(value: Any) -> int | float | None:
    if isinstance(value, bool):
        return None
    if isinstance(value, int | float):
        return value
    if isinstance(value, str):
        try:
            return int(value)
        except ValueError:
            pass
        try:
            return float(value)
        except ValueError:
            return None
    return None


def _split_list(text: str) -> list[Any]:
    """`-d files=a.py,b.py` (or a JSON list) for an array input."""
    stripped = text.strip()
    if stripped.startswith("["):
        import json

        try:
            loaded = json.loads(stripped)
        except ValueError:
            loaded = None
        if isinstance(loaded, list):
            return loaded
    return [part.strip() for part in text.split(",") if part.strip()]


def _article(kind: str) -> str:
    return {"array": "a list", "object": "a table", "integer": "a whole number",
            "boolean": "true or false"}.get(kind, f"a {kind}")


# ---------------------------------------------------------------------------------------------


def render(prompt: PromptFile, data: Mapping[str, Any]) -> str:
    """The prompt file's body with its input validated and interpolated."""
    values = validate_input(prompt.schema, data, str(prompt.path))
    return interpolate(prompt.body, values, declared=set(prompt.schema), where=str(prompt.path))


def render_text(text: str, data: Mapping[str, Any]) -> str:
    """An inline prompt with `-d` data: interpolated, every `{name}` must have a value."""
    return interpolate(text, dict(data), where="the prompt")
