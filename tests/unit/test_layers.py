"""The package's layers, read from its source: no import cycles, protocol code kept in lsp/,
docker-py kept to image builds, and comments that explain the code rather than cite history."""

from __future__ import annotations

import ast
import re
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

PACKAGE = Path(__file__).resolve().parents[2] / "server" / "channelcoder"


@dataclass(frozen=True)
class Edge:
    source: str
    target: str
    type_only: bool
    external: str  # the top-level name of a third-party import, else ""


def module_names() -> dict[str, Path]:
    out: dict[str, Path] = {}
    for path in PACKAGE.rglob("*.py"):
        parts = ("channelcoder", *path.relative_to(PACKAGE).with_suffix("").parts)
        if parts[-1] == "__init__":
            parts = parts[:-1]
        out[".".join(parts)] = path
    return out


def _type_checking_nodes(tree: ast.AST) -> set[int]:
    inside: set[int] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.If) and "TYPE_CHECKING" in ast.unparse(node.test):
            inside.update(id(child) for child in ast.walk(node))
    return inside


def edges(modules: dict[str, Path]) -> Iterator[Edge]:
    """Every import in the package, function-local ones included (a lazy import still ties the
    modules together)."""
    for name, path in modules.items():
        tree = ast.parse(path.read_text())
        type_only = _type_checking_nodes(tree)
        package = name if path.name == "__init__.py" else name.rpartition(".")[0]
        for node in ast.walk(tree):
            targets: list[str] = []
            if isinstance(node, ast.Import):
                targets = [alias.name for alias in node.names]
            elif isinstance(node, ast.ImportFrom):
                if node.level:
                    base = package
                    for _ in range(node.level - 1):
                        base = base.rpartition(".")[0]
                    module = f"{base}.{node.module}" if node.module else base
                else:
                    module = node.module or ""
                targets = [f"{module}.{alias.name}" if f"{module}.{alias.name}" in modules
                           else module for alias in node.names]
            for target in targets:
                if not target.startswith("channelcoder"):
                    yield Edge(name, "", id(node) in type_only, target.partition(".")[0])
                    continue
                while target and target not in modules:
                    target = target.rpartition(".")[0]
                if target and target != name:
                    yield Edge(name, target, id(node) in type_only, "")


def cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """The strongly connected components with more than one module (Tarjan)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    found: list[list[str]] = []

    def visit(node: str) -> None:
        index[node] = low[node] = len(index)
        stack.append(node)
        on_stack.add(node)
        for target in sorted(graph.get(node, ())):
            if target not in index:
                visit(target)
                low[node] = min(low[node], low[target])
            elif target in on_stack:
                low[node] = min(low[node], index[target])
        if low[node] == index[node]:
            component: list[str] = []
            while True:
                top = stack.pop()
                on_stack.discard(top)
                component.append(top)
                if top == node:
                    break
            if len(component) > 1:
                found.append(sorted(component))

    for node in sorted(graph):
        if node not in index:
            visit(node)
    return found


def _graph(*, with_type_only: bool) -> dict[str, set[str]]:
    graph: dict[str, set[str]] = {}
    for edge in edges(module_names()):
        if edge.target and (with_type_only or not edge.type_only):
            graph.setdefault(edge.source, set()).add(edge.target)
    return graph


def test_no_module_imports_itself_back() -> None:
    assert cycles(_graph(with_type_only=False)) == []


def test_type_only_cycles_stay_inside_the_language_server() -> None:
    outside = [c for c in cycles(_graph(with_type_only=True))
               if not all(m.startswith("channelcoder.lsp.") for m in c)]
    assert outside == []


def test_the_cycle_check_finds_a_cycle() -> None:
    assert cycles({"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}) == [["a", "b", "c"]]


def test_only_the_language_server_speaks_lsp() -> None:
    offenders = sorted({e.source for e in edges(module_names())
                        if e.external in ("lsprotocol", "pygls")
                        and not e.source.startswith("channelcoder.lsp")})
    assert offenders == []


CITATION = re.compile(r"DESIGN(\.md)?\s*§|\bissue \d+\b|\bissue #\d+", re.IGNORECASE)


def test_comments_explain_the_code_rather_than_cite_its_history() -> None:
    """The repository explains itself: no pointers to a design file outside it, no issue
    numbers (history belongs to commit messages)."""
    offenders = [f"{path.relative_to(PACKAGE)}:{number}"
                 for path in sorted(PACKAGE.rglob("*.py"))
                 for number, line in enumerate(path.read_text().splitlines(), 1)
                 if CITATION.search(line)]
    assert offenders == []


LOWER = ("channelcoder.claude", "channelcoder.workspace", "channelcoder.config",
         "channelcoder.state", "channelcoder.sessions", "channelcoder.request",
         "channelcoder.launch", "channelcoder.backend", "channelcoder.owner",
         "channelcoder.egress")


def test_the_host_side_layers_never_reach_into_the_sandbox_or_the_front_ends() -> None:
    def within(name: str, packages: tuple[str, ...]) -> bool:
        return any(name == p or name.startswith(p + ".") for p in packages)

    higher = ("channelcoder.sandbox", "channelcoder.lsp", "channelcoder.cli", "channelcoder.api")
    offenders = sorted(f"{e.source} -> {e.target}" for e in edges(module_names())
                       if within(e.source, LOWER) and within(e.target, higher))
    assert offenders == []


def test_docker_py_is_used_only_to_build_images() -> None:
    """The engine client's builder (and its error types) and the build context's
    .dockerignore matcher; every other engine call is the stdlib client's."""
    users = sorted({e.source for e in edges(module_names()) if e.external == "docker"})
    assert users == ["channelcoder.sandbox.engine", "channelcoder.sandbox.image.cachekey"]
