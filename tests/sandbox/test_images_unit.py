"""Which Dockerfile a job uses and the content key that decides whether it is rebuilt.

No engine needed: discovery is file checks, the key is hashing.
"""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from channelcoder.config import DockerOptions
from channelcoder.errors import ConfigError
from channelcoder.sandbox.image import cachekey
from channelcoder.sandbox.image.cachekey import StatMemo, compute_key, copy_sources, logical_lines
from channelcoder.sandbox.image.resolve import (
    BUNDLED_DOCKERFILE,
    VERSION_FILE,
    BuildLog,
    find_source,
    plan_build,
)

ROOT = Path(__file__).resolve().parents[2]
SANDBOX_DOCKERFILE = "FROM base\n# channelcoder: sandbox\nCOPY marker.txt /marker.txt\n"


def test_the_dockerfile_arg_default_is_the_pinned_cli_version() -> None:
    text = BUNDLED_DOCKERFILE.read_text()
    match = re.search(r"^ARG CLAUDE_CODE_VERSION=(\S+)$", text, re.MULTILINE)
    assert match, "the Dockerfile must declare ARG CLAUDE_CODE_VERSION with a default"
    assert match.group(1) == VERSION_FILE.read_text().strip()
    assert (ROOT / "Dockerfile").resolve() == BUNDLED_DOCKERFILE.resolve()


def test_the_bundled_dockerfile_has_what_the_issue_lists() -> None:
    text = BUNDLED_DOCKERFILE.read_text()
    assert "ARG BASE_IMAGE=debian:bookworm-slim" in text
    for tool in ("git", "ripgrep", "jq", "curl", "ca-certificates", "nodejs", "npm"):
        assert re.search(rf"\b{tool}\b", text), tool
    assert "DISABLE_AUTOUPDATER=1" in text and "WORKDIR /workspace" in text
    assert re.search(r"^USER (?!root)\S+", text, re.MULTILINE)
    # Layers ordered for caching: system packages, then the CA, then the CLI.
    assert text.index("apt-get install") < text.index("COPY ca/") < text.index("npm install")


def _ws(tmp_path: Path, dockerfile: str | None = None, channelcoder: str | None = None) -> Path:
    if dockerfile is not None:
        (tmp_path / "Dockerfile").write_text(dockerfile)
    if channelcoder is not None:
        (tmp_path / ".channelcoder").mkdir(exist_ok=True)
        (tmp_path / ".channelcoder" / "Dockerfile").write_text(channelcoder)
    return tmp_path


def test_discovery_order(tmp_path: Path) -> None:
    ws = _ws(tmp_path, dockerfile=SANDBOX_DOCKERFILE, channelcoder="FROM x\n")
    assert find_source(DockerOptions(image="img:1"), ws, trusted=True).image == "img:1"
    explicit = find_source(DockerOptions(dockerfile="Dockerfile"), ws, trusted=True)
    assert explicit.kind == "dockerfile" and explicit.dockerfile == ws / "Dockerfile"
    assert explicit.context == ws
    found = find_source(DockerOptions(), ws, trusted=True)
    assert found.origin == ".channelcoder/Dockerfile" and found.context == ws
    (ws / ".channelcoder" / "Dockerfile").unlink()
    assert find_source(DockerOptions(), ws, trusted=True).origin == "./Dockerfile"
    assert find_source(DockerOptions(auto=False), ws, trusted=True).kind == "bundled"


def test_an_app_dockerfile_without_claude_is_skipped_with_one_notice(tmp_path: Path) -> None:
    ws = _ws(tmp_path, dockerfile="FROM python:3.12\nRUN pip install flask\n")
    source = find_source(DockerOptions(), ws, trusted=True)
    assert source.kind == "bundled"
    assert len(source.notices) == 1
    assert "./Dockerfile does not install the Claude CLI" in source.notices[0]
    assert "\n" not in source.notices[0]


def test_a_dockerfile_naming_the_cli_package_counts(tmp_path: Path) -> None:
    ws = _ws(tmp_path, dockerfile="FROM node:20\nRUN npm i -g @anthropic-ai/claude-code\n")
    assert find_source(DockerOptions(), ws, trusted=True).kind == "dockerfile"


def test_an_untrusted_workspace_gets_the_bundled_image(tmp_path: Path) -> None:
    ws = _ws(tmp_path, dockerfile=SANDBOX_DOCKERFILE)
    source = find_source(DockerOptions(), ws, trusted=False)
    assert source.kind == "bundled"
    assert "not trusted" in source.notices[0] and "channelcoder trust" in source.notices[0]


def test_the_projects_own_dockerfile_is_the_bundled_image() -> None:
    source = find_source(DockerOptions(), ROOT, trusted=True)
    assert source.kind == "bundled"


def test_a_missing_explicit_dockerfile_is_a_clear_error(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="does not exist"):
        find_source(DockerOptions(dockerfile="nope/Dockerfile"), tmp_path, trusted=True)


def test_copy_sources_are_read_statically() -> None:
    text = """# syntax comment
FROM base AS build
COPY --chown=1:1 a.txt \\
     src/ /app/
ADD ["b.json", "/b.json"]
COPY --from=build /x /y
ADD https://example.com/f.tgz /f.tgz
RUN echo COPY nothing
"""
    assert copy_sources(text) == (["a.txt", "src", "b.json"], "")
    assert logical_lines("RUN a \\\n  # comment\n  b\n")[0].split() == ["RUN", "a", "b"]
    for line, why in (("COPY . /app", "whole context"), ("COPY *.txt /t/", "wildcard"),
                      ("COPY $SRC /s", "variable"), ("ADD ./ /app", "whole context")):
        sources, reason = copy_sources(f"FROM x\n{line}\n")
        assert sources == [] and why in reason


def _key(ws: Path, memo: StatMemo, text: str | None = None, **kwargs: object) -> str:
    dockerfile = (text or (ws / "Dockerfile").read_text()).encode()
    args = dict(kwargs.pop("build_args", {"CLAUDE_CODE_VERSION": "1"}))  # type: ignore[call-overload]
    return compute_key(dockerfile, context=ws, build_args=args, ca_bundle=None, memo=memo).digest


def test_the_key_follows_the_dockerfile_and_what_it_copies_only(tmp_path: Path) -> None:
    ws = _ws(tmp_path, dockerfile=SANDBOX_DOCKERFILE)
    (ws / "marker.txt").write_text("one")
    (ws / "unrelated.py").write_text("print(1)")
    memo = StatMemo()
    first = _key(ws, memo)
    assert _key(ws, memo) == first
    (ws / "unrelated.py").write_text("print(2)")
    assert _key(ws, memo) == first
    (ws / "marker.txt").write_text("two")
    second = _key(ws, memo)
    assert second != first
    (ws / "Dockerfile").write_text(SANDBOX_DOCKERFILE + "RUN true\n")
    assert _key(ws, memo) not in (first, second)
    assert _key(ws, memo, build_args={"CLAUDE_CODE_VERSION": "2"}) != _key(ws, memo)


def test_dockerignored_files_do_not_change_the_key(tmp_path: Path) -> None:
    ws = _ws(tmp_path, dockerfile="FROM x\nCOPY src /app\n")
    (ws / "src").mkdir()
    (ws / "src" / "main.py").write_text("a")
    (ws / "src" / "cache.pyc").write_text("a")
    (ws / ".dockerignore").write_text("**/*.pyc\n")
    memo = StatMemo()
    first = _key(ws, memo)
    (ws / "src" / "cache.pyc").write_text("b")
    assert _key(ws, memo) == first
    (ws / "src" / "main.py").write_text("b")
    assert _key(ws, memo) != first


def test_copy_dot_hashes_the_whole_context_minus_dockerignore(tmp_path: Path) -> None:
    ws = _ws(tmp_path, dockerfile="FROM x\nCOPY . /app\n")
    (ws / "a.py").write_text("a")
    (ws / "node_modules").mkdir()
    (ws / "node_modules" / "big.js").write_text("a")
    (ws / ".dockerignore").write_text("node_modules\n")
    memo = StatMemo()
    key = compute_key((ws / "Dockerfile").read_bytes(), context=ws, build_args={},
                      ca_bundle=None, memo=memo)
    assert key.whole_context and "whole context" in key.reason
    assert "a.py" in key.files and not any(f.startswith("node_modules") for f in key.files)
    (ws / "node_modules" / "big.js").write_text("b")
    assert _key(ws, memo, build_args={}) == key.digest
    (ws / "a.py").write_text("b")
    assert _key(ws, memo, build_args={}) != key.digest


def test_the_stat_memo_skips_rehashing_unchanged_files(tmp_path: Path,
                                                       monkeypatch: pytest.MonkeyPatch) -> None:
    target = tmp_path / "f.bin"
    target.write_bytes(b"x" * 1000)
    hashed: list[Path] = []
    real = cachekey._hash_file
    monkeypatch.setattr(cachekey, "_hash_file", lambda p: hashed.append(p) or real(p))
    memo = StatMemo(tmp_path / "memo.json")
    digest = memo.digest(target)
    memo.save()
    assert StatMemo(tmp_path / "memo.json").digest(target) == digest
    assert hashed == [target]
    target.write_bytes(b"y" * 1000)
    assert memo.digest(target) != digest and len(hashed) == 2


def test_the_bundled_key_covers_the_ca_bundle_and_the_pinned_version(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    ca = tmp_path / "ca.pem"
    ca.write_text("-----BEGIN CERTIFICATE-----\nA\n-----END CERTIFICATE-----\n")
    source = find_source(DockerOptions(), tmp_path, trusted=False)
    memo = StatMemo()
    with_ca = plan_build(source, DockerOptions(ca_certificates=str(ca)), memo)
    without = plan_build(source, DockerOptions(ca_certificates="none"), memo)
    assert with_ca.tag != without.tag and with_ca.ca_bundle and without.ca_bundle is None
    assert with_ca.build_args["CLAUDE_CODE_VERSION"] == VERSION_FILE.read_text().strip()
    assert re.fullmatch(r"channelcoder-auto:[0-9a-f]{12}", with_ca.tag)
    monkeypatch.setenv("NODE_EXTRA_CA_CERTS", str(ca))
    assert plan_build(source, DockerOptions(), memo).tag == with_ca.tag


def test_a_failed_build_quotes_the_failing_step_and_its_last_lines() -> None:
    log = BuildLog()
    for chunk in ("Step 1/3 : FROM base\n ---> abc\n", "Step 2/3 : RUN make\n ---> Running in x\n",
                  "compiling\nerror: no rule to make tar", "get 'all'\n"):
        log.feed(chunk)
    error = log.failure("The command '/bin/sh -c make' returned a non-zero code: 2", "./Dockerfile")
    assert "failed at Step 2/3 : RUN make" in error.message
    assert "returned a non-zero code: 2" in error.message
    assert "| error: no rule to make target 'all'" in error.message
    assert "| compiling" in error.message
    assert "./Dockerfile" in error.hint
