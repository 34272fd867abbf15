"""Options, one schema everywhere, validated here once.

Every source of options (CLI flags, prompt front matter, LSP settings, the project file
`.channelcoder/config.toml`) is first turned into a *layer*: a plain dict with snake_case keys.
`merge_layers` stacks layers by precedence and `build_options` validates the result into frozen
dataclasses. Keys that weaken isolation are removed from untrusted layers by `untrusted_view`.
"""

from __future__ import annotations

import dataclasses
import json
import re
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

from .errors import ConfigError

PermissionMode = Literal["default", "acceptEdits", "plan", "bypassPermissions", "dontAsk"]
PERMISSION_MODES: tuple[str, ...] = ("default", "acceptEdits", "plan", "bypassPermissions", "dontAsk")
NETWORK_MODES = ("proxy", "open", "none", "host")
NETWORK_ALIASES = {"bridge": "open"}  # the name of `open` before there was a proxy
APPLY_MODES = ("direct", "propose")
PULL_POLICIES = ("missing", "never", "always")
ENV_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")
MEMORY = re.compile(r"^(\d+(?:\.\d+)?)([bkmg]?)$", re.IGNORECASE)
DEFAULT_TIMEOUT = 30 * 60.0
DEFAULT_IDLE_TIMEOUT = 5 * 60.0
PROJECT_FILE = Path(".channelcoder") / "config.toml"


@dataclass(frozen=True)
class DockerOptions:
    auto: bool = True
    image: str | None = None
    dockerfile: str | None = None
    mounts: tuple[str, ...] = ()
    env: Mapping[str, str] = field(default_factory=dict)
    network: str = "proxy"
    network_allow: tuple[str, ...] = ()
    network_ask: bool = True
    memory: str = "4g"
    cpus: float = 2.0
    pids_limit: int = 512
    user: str = "auto"
    ca_certificates: str = "auto"
    build_args: Mapping[str, str] = field(default_factory=dict)
    keep_warm: float = 300.0
    no_cache: bool = False
    pull: str = "missing"
    # None: decided from the engine (another machine's engine gets the files copied in).
    remote: bool | None = None

    @property
    def memory_bytes(self) -> int:
        return parse_memory(self.memory, "docker.memory")


@dataclass(frozen=True)
class WorktreeOptions:
    branch: str
    base: str | None = None
    keep: bool = True
    path: str | None = None


@dataclass(frozen=True)
class RunOptions:
    model: str | None = None
    max_turns: int | None = None
    permission_mode: str | None = None
    tools: tuple[str, ...] | None = None
    disallowed_tools: tuple[str, ...] = ()
    system: str | None = None
    append_system: str | None = None
    resume: str | None = None
    continue_: bool = False
    session: str | None = None
    mcp_config: str | None = None
    timeout: float = DEFAULT_TIMEOUT
    idle_timeout: float = DEFAULT_IDLE_TIMEOUT
    max_jobs: int = 2
    docker: DockerOptions | None = None
    worktree: WorktreeOptions | None = None
    apply: str = "direct"
    verbose: bool = False
    partial_messages: bool = True
    claude_path: str | None = None
    add_dirs: tuple[str, ...] = ()

    def replace(self, **changes: Any) -> RunOptions:
        return dataclasses.replace(self, **changes)


# ---------------------------------------------------------------------------------------------
# Layers

ALIASES: dict[str, str] = {
    "allowedTools": "tools",
    "allowed_tools": "tools",
    "disallowedTools": "disallowed_tools",
    "systemPrompt": "system",
    "system_prompt": "system",
    "appendSystemPrompt": "append_system",
    "append_system_prompt": "append_system",
    "mcpConfig": "mcp_config",
    "continue": "continue_",
    "maxTurns": "max_turns",
    "permissionMode": "permission_mode",
}

RUN_KEYS = {f.name for f in dataclasses.fields(RunOptions)}
DOCKER_KEYS = {f.name for f in dataclasses.fields(DockerOptions)}
WORKTREE_KEYS = {f.name for f in dataclasses.fields(WorktreeOptions)}

# Keys a file in an untrusted workspace may not set.
UNTRUSTED_RUN_KEYS = {"mcp_config", "claude_path", "add_dirs"}
UNTRUSTED_DOCKER_KEYS = {"mounts", "env", "network", "network_allow", "network_ask", "dockerfile",
                         "image", "auto", "user", "build_args", "ca_certificates", "remote"}


def snake(name: str) -> str:
    if name in ALIASES:
        return ALIASES[name]
    return re.sub(r"(?<!^)(?=[A-Z])", "_", name).lower()


def normalize_layer(data: Mapping[str, Any], where: str) -> dict[str, Any]:
    """Rename camelCase and alias keys to snake_case; reject unknown keys, naming them."""
    out: dict[str, Any] = {}
    for raw_key, value in data.items():
        key = snake(str(raw_key))
        if key not in RUN_KEYS:
            raise ConfigError(
                f"unknown option '{raw_key}' in {where}",
                hint="known options: " + ", ".join(sorted(RUN_KEYS)),
            )
        if key == "docker" and isinstance(value, Mapping):
            value = _normalize_sub(value, DOCKER_KEYS, f"{where} (docker)")
        elif key == "worktree" and isinstance(value, Mapping):
            value = _normalize_sub(value, WORKTREE_KEYS, f"{where} (worktree)")
        out[key] = value
    return out


def _normalize_sub(data: Mapping[str, Any], known: set[str], where: str) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for raw_key, value in data.items():
        key = snake(str(raw_key))
        if key not in known:
            raise ConfigError(
                f"unknown option '{raw_key}' in {where}",
                hint="known keys: " + ", ".join(sorted(known)),
            )
        out[key] = value
    return out


def untrusted_view(layer: Mapping[str, Any]) -> tuple[dict[str, Any], list[str]]:
    """The layer without the keys that weaken isolation, and the names of what was dropped."""
    kept: dict[str, Any] = {}
    dropped: list[str] = []
    for key, value in layer.items():
        if key in UNTRUSTED_RUN_KEYS:
            dropped.append(key)
        elif key == "docker":
            if isinstance(value, Mapping):
                sub = {k: v for k, v in value.items() if k not in UNTRUSTED_DOCKER_KEYS}
                dropped += [f"docker.{k}" for k in value if k in UNTRUSTED_DOCKER_KEYS]
                kept["docker"] = sub
            elif value is False or value is None:
                dropped.append("docker=false")
            else:
                kept["docker"] = value
        else:
            kept[key] = value
    return kept, dropped


def merge_layers(*layers: Mapping[str, Any]) -> dict[str, Any]:
    """Stack layers, highest precedence first. `docker` and `worktree` dicts merge key-wise."""
    merged: dict[str, Any] = {}
    for layer in reversed(layers):
        for key, value in layer.items():
            old = merged.get(key)
            if key in ("docker", "worktree") and isinstance(value, Mapping):
                base = dict(old) if isinstance(old, Mapping) else {}
                if key == "worktree" and isinstance(old, str):
                    base = {"branch": old}
                merged[key] = {**base, **value}
            else:
                merged[key] = value
    return merged


def load_project_file(workspace: Path) -> dict[str, Any]:
    path = workspace / PROJECT_FILE
    if not path.is_file():
        return {}
    import tomllib

    try:
        data = tomllib.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, tomllib.TOMLDecodeError) as exc:
        raise ConfigError(f"cannot read {path}: {exc}", hint="fix the TOML syntax") from exc
    return normalize_layer(data, str(PROJECT_FILE))


# ---------------------------------------------------------------------------------------------
# Validation


def build_options(layer: Mapping[str, Any]) -> RunOptions:
    """Validate a merged snake_case layer into RunOptions. Raises ConfigError naming the key."""
    kwargs: dict[str, Any] = {}
    for key, value in layer.items():
        if key not in RUN_KEYS:
            raise ConfigError(f"unknown option '{key}'")
        if value is None and key not in ("docker", "worktree"):
            continue
        kwargs[key] = _RUN_VALIDATORS.get(key, _identity)(value, key)
    return RunOptions(**kwargs)


def sift_layer(layer: Mapping[str, Any]) -> tuple[dict[str, Any], list[tuple[str, ConfigError]]]:
    """The values of a layer that validate, and (key, error) for each that does not; a docker
    table keeps its valid keys and has each invalid one reported (as `docker.<key>`). The
    forgiving loaders report each error and use the default in its place."""
    good: dict[str, Any] = {}
    problems: list[tuple[str, ConfigError]] = []
    for key, value in layer.items():
        try:
            build_options({key: value})
        except ConfigError as exc:
            if key == "docker" and isinstance(value, Mapping):
                good[key] = {}
                for sub, item in value.items():
                    error = _docker_key_error(sub, item)
                    if error is None:
                        good[key][sub] = item
                    else:
                        problems.append((f"docker.{sub}", error))
                if len(good[key]) == len(value):  # each key is fine; together they are not
                    problems.append((key, exc))
                    del good[key]
                continue
            problems.append((key, exc))
            continue
        good[key] = value
    return good, problems


def _docker_key_error(key: Any, value: Any) -> ConfigError | None:
    try:
        build_options({"docker": {key: value}})
    except ConfigError as exc:
        return exc
    return None


def build_options_forgiving(
    layer: Mapping[str, Any],
) -> tuple[RunOptions, list[str]]:
    """Like build_options, but an invalid value is dropped (default used) with a warning."""
    good, problems = sift_layer(layer)
    return build_options(good), [f"{exc.message}; using the default" for _, exc in problems]


def _identity(value: Any, key: str) -> Any:
    return value


def _str(value: Any, key: str) -> str:
    if not isinstance(value, str):
        raise ConfigError(f"option '{key}' must be a string, got {type(value).__name__}")
    return value


def _bool(value: Any, key: str) -> bool:
    if isinstance(value, bool):
        return value
    if isinstance(value, str) and value.lower() in ("true", "false", "1", "0", "yes", "no"):
        return value.lower() in ("true", "1", "yes")
    raise ConfigError(f"option '{key}' must be true or false, got {value!r}")


def _positive_int(value: Any, key: str) -> int:
    try:
        number = int(value) if not isinstance(value, bool) else None
    except (TypeError, ValueError):
        number = None
    if number is None or number <= 0 or (isinstance(value, float) and not value.is_integer()):
        raise ConfigError(f"option '{key}' must be a positive whole number, got {value!r}")
    return number


def _positive_float(value: Any, key: str) -> float:
    try:
        number = float(value) if not isinstance(value, bool) else -1.0
    except (TypeError, ValueError):
        number = -1.0
    if not number > 0 or number == float("inf"):
        raise ConfigError(f"option '{key}' must be a positive number, got {value!r}")
    return number


def _non_negative_float(value: Any, key: str) -> float:
    if value == 0:
        return 0.0
    return _positive_float(value, key)


def _network(value: Any, key: str) -> str:
    return _choice(NETWORK_MODES)(NETWORK_ALIASES.get(value, value), key)


def _choice(choices: Iterable[str]) -> Callable[[Any, str], str]:
    options = tuple(choices)

    def check(value: Any, key: str) -> str:
        if value not in options:
            raise ConfigError(
                f"option '{key}' must be one of {', '.join(options)}, got {value!r}"
            )
        return str(value)

    return check


def _rules(value: Any, key: str) -> tuple[str, ...]:
    """Tool rules: a list, or one string of comma/space separated rules."""
    if isinstance(value, str):
        return tuple(split_rules(value))
    if isinstance(value, list | tuple) and all(isinstance(v, str) for v in value):
        rules: list[str] = []
        for item in value:
            rules += split_rules(item)
        return tuple(rules)
    raise ConfigError(f"option '{key}' must be a list of tool rules such as [\"Read\", \"Bash(git log:*)\"]")


def split_rules(text: str) -> list[str]:
    """Split 'Read, Bash(git log:*) Edit' into rules, keeping spaces inside parentheses."""
    rules: list[str] = []
    current = ""
    depth = 0
    for char in text:
        if char == "(":
            depth += 1
        elif char == ")":
            depth = max(0, depth - 1)
        if char in ", " and depth == 0:
            if current:
                rules.append(current)
            current = ""
            continue
        current += char
    if current:
        rules.append(current)
    return rules


def _str_tuple(value: Any, key: str) -> tuple[str, ...]:
    if isinstance(value, str):
        return (value,)
    if isinstance(value, list | tuple) and all(isinstance(v, str) for v in value):
        return tuple(value)
    raise ConfigError(f"option '{key}' must be a list of strings")


def _env(value: Any, key: str) -> dict[str, str]:
    if isinstance(value, list | tuple):
        pairs: dict[str, Any] = {}
        for item in value:
            if not isinstance(item, str) or "=" not in item:
                raise ConfigError(f"option '{key}' entries must look like NAME=value")
            name, _, val = item.partition("=")
            pairs[name] = val
        value = pairs
    if not isinstance(value, Mapping):
        raise ConfigError(f"option '{key}' must be a table of NAME = \"value\"")
    out: dict[str, str] = {}
    for name, val in value.items():
        if not isinstance(name, str) or not ENV_NAME.match(name):
            raise ConfigError(
                f"option '{key}' has an invalid variable name {name!r}",
                hint="names are letters, digits and _, not starting with a digit",
            )
        if not isinstance(val, str | int | float) or isinstance(val, bool):
            raise ConfigError(f"option '{key}.{name}' must be a string")
        out[name] = str(val)
    return out


def parse_memory(value: Any, key: str) -> int:
    match = MEMORY.match(str(value).strip())
    if not match:
        raise ConfigError(
            f"option '{key}' must be a size such as 512m or 4g, got {value!r}"
        )
    number = float(match.group(1))
    scale = {"": 1, "b": 1, "k": 1 << 10, "m": 1 << 20, "g": 1 << 30}[match.group(2).lower()]
    size = int(number * scale)
    if size < 6 * (1 << 20):
        raise ConfigError(f"option '{key}' is too small ({value}); Docker needs at least 6m")
    return size


def _memory(value: Any, key: str) -> str:
    parse_memory(value, key)
    return str(value).strip()


def _docker(value: Any, key: str) -> DockerOptions | None:
    if value is None or value is False:
        return None
    if value is True:
        return DockerOptions()
    if isinstance(value, DockerOptions):
        return value
    if isinstance(value, str):
        return DockerOptions(image=value, auto=False)
    if not isinstance(value, Mapping):
        raise ConfigError(f"option '{key}' must be true, false or a table of Docker options")
    data = _normalize_sub(value, DOCKER_KEYS, "docker")
    kwargs = {k: _DOCKER_VALIDATORS.get(k, _identity)(v, f"docker.{k}") for k, v in data.items()
              if v is not None}
    return DockerOptions(**kwargs)


def _remote(value: Any, key: str) -> bool | None:
    """true, false, or "auto" (decided from the engine)."""
    if isinstance(value, str) and value.strip().lower() == "auto":
        return None
    return _bool(value, key)


def _pull(value: Any, key: str) -> str:
    """When a missing (or every) image is pulled from its registry."""
    if isinstance(value, str) and value.strip().lower() in PULL_POLICIES:
        return value.strip().lower()
    raise ConfigError(
        f"option '{key}' must be one of {', '.join(PULL_POLICIES)}, got {value!r}",
        hint="missing: pull an image that is not on the engine (the default); never: only use "
             "local images; always: pull each image once per process before using it")


def _worktree(value: Any, key: str) -> WorktreeOptions | None:
    if value is None or value is False:
        return None
    if isinstance(value, WorktreeOptions):
        return value
    if isinstance(value, str):
        value = {"branch": value}
    if not isinstance(value, Mapping):
        raise ConfigError(f"option '{key}' must be a branch name or a table")
    data = _normalize_sub(value, WORKTREE_KEYS, "worktree")
    branch = data.get("branch")
    if not isinstance(branch, str) or not branch.strip():
        raise ConfigError("option 'worktree.branch' must name a branch")
    return WorktreeOptions(
        branch=branch.strip(),
        base=_str(data["base"], "worktree.base") if data.get("base") else None,
        keep=_bool(data.get("keep", True), "worktree.keep"),
        path=_str(data["path"], "worktree.path") if data.get("path") else None,
    )


def _mcp_config(value: Any, key: str) -> str:
    if isinstance(value, Mapping):
        return json.dumps(value)
    return _str(value, key)


def _str_map(value: Any, key: str) -> dict[str, str]:
    if not isinstance(value, Mapping):
        raise ConfigError(f"option '{key}' must be a table of strings")
    return {str(k): str(v) for k, v in value.items()}


_DOCKER_VALIDATORS: dict[str, Callable[[Any, str], Any]] = {
    "auto": _bool,
    "image": _str,
    "dockerfile": _str,
    "mounts": _str_tuple,
    "env": _env,
    "network": _network,
    "network_allow": _str_tuple,
    "network_ask": _bool,
    "memory": _memory,
    "cpus": _positive_float,
    "pids_limit": _positive_int,
    "user": _str,
    "ca_certificates": _str,
    "build_args": _str_map,
    "keep_warm": _non_negative_float,
    "no_cache": _bool,
    "pull": _pull,
    "remote": _remote,
}

_RUN_VALIDATORS: dict[str, Callable[[Any, str], Any]] = {
    "model": _str,
    "max_turns": _positive_int,
    "permission_mode": _choice(PERMISSION_MODES),
    "tools": _rules,
    "disallowed_tools": _rules,
    "system": _str,
    "append_system": _str,
    "resume": _str,
    "continue_": _bool,
    "session": _str,
    "mcp_config": _mcp_config,
    "timeout": _positive_float,
    "idle_timeout": _positive_float,
    "max_jobs": _positive_int,
    "docker": _docker,
    "worktree": _worktree,
    "apply": _choice(APPLY_MODES),
    "verbose": _bool,
    "partial_messages": _bool,
    "claude_path": _str,
    "add_dirs": _str_tuple,
}


def resolve_text_or_file(value: str | None, base: Path) -> str | None:
    """A system prompt that names an existing .md/.txt file means that file's content."""
    if value is None or "\n" in value or len(value) > 4096:
        return value
    if value.endswith((".md", ".txt")):
        path = (base / value).expanduser()
        if path.is_file():
            return path.read_text(encoding="utf-8")
    return value


def check_mcp_config(value: str | None, base: Path) -> str | None:
    """An inline JSON object, or a readable JSON file (resolved against `base`)."""
    if value is None:
        return None
    text = value.strip()
    if text.startswith("{"):
        try:
            json.loads(text)
        except json.JSONDecodeError as exc:
            raise ConfigError(f"mcp_config is not valid JSON ({exc.msg})",
                              hint="pass a path to a JSON file or an inline JSON object") from exc
        return value
    path = (base / text).expanduser()
    try:
        json.loads(path.read_text(encoding="utf-8"))
    except OSError as exc:
        raise ConfigError(f"cannot read the MCP config {text}: {exc.strerror or exc}",
                          hint="pass a readable JSON file or an inline JSON object") from exc
    except (ValueError, UnicodeDecodeError) as exc:
        raise ConfigError(f"the MCP config {text} is not valid JSON",
                          hint="check the file with 'jq . FILE'") from exc
    return str(path)
