"""Prompt files: Markdown with YAML front matter, and {var} interpolation."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from .config import normalize_layer
from .errors import PromptError

PROMPT_ONLY_KEYS = ("title", "input", "description")


@dataclass
class PromptFile:
    path: Path
    body: str
    title: str | None = None
    layer: dict[str, Any] = field(default_factory=dict)
    schema: dict[str, Any] = field(default_factory=dict)


def split_front_matter(text: str, where: str) -> tuple[dict[str, Any], str]:
    if not text.startswith("---"):
        return {}, text
    lines = text.splitlines(keepends=True)
    for index in range(1, len(lines)):
        if lines[index].strip() == "---":
            raw = "".join(lines[1:index])
            try:
                data = yaml.safe_load(raw) or {}
            except yaml.YAMLError as exc:
                raise PromptError(f"{where}: the front matter is not valid YAML ({exc})") from exc
            if not isinstance(data, dict):
                raise PromptError(f"{where}: the front matter must be a mapping")
            return data, "".join(lines[index + 1 :])
    raise PromptError(f"{where}: the front matter has no closing '---'")


def load_prompt_file(path: Path) -> PromptFile:
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise PromptError(f"cannot read the prompt file {path}: {exc}") from exc
    front, body = split_front_matter(text, str(path))
    title = front.pop("title", None)
    schema = front.pop("input", None) or {}
    front.pop("description", None)
    return PromptFile(path=path, body=body.strip("\n"), title=title,
                      layer=normalize_layer(front, f"{path} front matter"), schema=schema)


def render(prompt: PromptFile, data: dict[str, Any]) -> str:
    text = prompt.body
    for key, value in data.items():
        text = text.replace("{" + key + "}", str(value))
    return text
