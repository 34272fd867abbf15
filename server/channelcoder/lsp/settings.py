"""Editor settings: the `channelcoder` section, split into run options and server-only keys.

Settings are the user's own (they apply in untrusted workspaces too). Loading is forgiving: an
unknown key or an invalid value becomes a warning naming the key, and the default is used.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from ..config import DOCKER_KEYS, RUN_KEYS, WORKTREE_KEYS, normalize_layer, sift_layer, snake
from ..errors import ConfigError

LOG_LEVELS = ("debug", "info", "warning", "error")
EDITOR_DEFAULTS: dict[str, Any] = {"docker": True, "apply": "propose"}


@dataclass(frozen=True)
class ServerSettings:
    """Keys that configure the server itself, not a job."""

    stream_events: bool = False
    log_level: str = "warning"
    standby: bool = True


SERVER_KEYS = {"streamEvents": "stream_events", "stream_events": "stream_events",
               "logLevel": "log_level", "log_level": "log_level", "standby": "standby"}


@dataclass
class EditorSettings:
    server_values: dict[str, Any] = field(default_factory=dict)
    layer: dict[str, Any] = field(default_factory=dict)
    warnings: list[str] = field(default_factory=list)

    @property
    def server(self) -> ServerSettings:
        return ServerSettings(**self.server_values)

    @property
    def max_jobs(self) -> int:
        value = self.layer.get("max_jobs")
        return value if isinstance(value, int) and value > 0 else 2


def parse_settings(raw: Any, where: str) -> EditorSettings:
    """Validate one settings object (initializationOptions, configuration, didChange...)."""
    out = EditorSettings()
    if raw is None:
        return out
    if not isinstance(raw, Mapping):
        out.warnings.append(f"channelcoder settings from {where} must be an object, got "
                            f"{type(raw).__name__}; using the defaults")
        return out
    if set(raw) == {"channelcoder"} and isinstance(raw["channelcoder"], Mapping):
        out.warnings.append(f"channelcoder settings from {where} are wrapped in "
                            "{\"channelcoder\": …}; pass the section's contents (accepted)")
        raw = raw["channelcoder"]
    for key, value in raw.items():
        name = str(key)
        if value is None:
            continue  # an unset setting (VS Code sends null): the default
        if name in SERVER_KEYS:
            _server_key(SERVER_KEYS[name], name, value, out.server_values, out.warnings)
            continue
        if snake(name) not in RUN_KEYS:
            out.warnings.append(f"unknown setting '{name}' (ignored); known: "
                                + ", ".join(sorted(_camel(k) for k in RUN_KEYS)))
            continue
        if snake(name) in SUB_KEYS and isinstance(value, Mapping):
            known = SUB_KEYS[snake(name)]
            for sub in [k for k in value if snake(str(k)) not in known]:
                out.warnings.append(f"unknown setting '{name}.{sub}' (ignored); known: "
                                    + ", ".join(sorted(_camel(k) for k in known)))
            value = {k: v for k, v in value.items() if snake(str(k)) in known}
        layer = normalize_layer({name: value}, f"the editor settings ({where})")
        kept, problems = sift_layer(layer)
        out.layer.update(kept)
        out.warnings += [_problem(key, exc) for key, exc in problems]
    return out


def _problem(key: str, exc: ConfigError) -> str:
    """An invalid value, named as the user wrote it (`docker.keepWarm`, not `keep_warm`)."""
    shown = ".".join(_camel(part) for part in key.split("."))
    said = f"option '{key}' "
    if exc.message.startswith(said):
        return f"setting '{shown}' {exc.message[len(said):]}; using the default"
    return f"setting '{shown}': {exc.message}; using the default"


def _server_key(attr: str, name: str, value: Any, out: dict[str, Any],
                warnings: list[str]) -> None:
    if attr in ("stream_events", "standby"):
        if isinstance(value, bool):
            out[attr] = value
            return
        warnings.append(f"setting '{name}' must be true or false, got {value!r}; using the default")
        return
    if isinstance(value, str) and value.lower() in LOG_LEVELS:
        out[attr] = value.lower()
        return
    warnings.append(f"setting '{name}' must be one of {', '.join(LOG_LEVELS)}, got {value!r}; "
                    "using the default")


SUB_KEYS = {"docker": DOCKER_KEYS, "worktree": WORKTREE_KEYS}


def _camel(name: str) -> str:
    head, *rest = name.split("_")
    return head + "".join(part.title() for part in rest)


def merge_settings(*sources: EditorSettings) -> EditorSettings:
    """Later sources win; run-option layers merge key-wise (docker tables too)."""
    from ..config import merge_layers

    merged = EditorSettings()
    for source in sources:
        merged.layer = merge_layers(source.layer, merged.layer)
        merged.server_values.update(source.server_values)
        merged.warnings += source.warnings
    return merged


def with_editor_defaults(layer: Mapping[str, Any], project: Mapping[str, Any]) -> dict[str, Any]:
    """Fill `docker: true` and `apply: propose` where neither the settings nor the project say."""
    out = dict(layer)
    for key, value in EDITOR_DEFAULTS.items():
        if key not in out and key not in project:
            out[key] = value
    return out
