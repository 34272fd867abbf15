"""Pull plumbing without an engine: which registry a reference names, whose credentials the
docker config gives it (a real credential helper process included), how a pull reads to the
user, and which images a Dockerfile builds from."""

from __future__ import annotations

import base64
import json
import logging
import re
from pathlib import Path

import pytest

from channelcoder.errors import ConfigError
from channelcoder.redact import redact
from channelcoder.sandbox.engine.api import registry_auth_header, split_reference
from channelcoder.sandbox.image.pull import PullProgress, pull_failed
from channelcoder.sandbox.image.registry_auth import find_auth, registry_of
from channelcoder.sandbox.image.resolve import base_images


@pytest.mark.parametrize(("ref", "registry", "repository", "tag"), [
    ("debian", "docker.io", "debian", "latest"),
    ("library/debian:bookworm", "docker.io", "library/debian", "bookworm"),
    ("user/app", "docker.io", "user/app", "latest"),
    ("docker.io/library/debian:12", "docker.io", "docker.io/library/debian", "12"),
    ("index.docker.io/user/app:1", "docker.io", "index.docker.io/user/app", "1"),
    ("localhost/app", "localhost", "localhost/app", "latest"),
    ("localhost:5000/app", "localhost:5000", "localhost:5000/app", "latest"),
    ("127.0.0.1:5000/team/app:1.2", "127.0.0.1:5000", "127.0.0.1:5000/team/app", "1.2"),
    ("ghcr.io/o/app@sha256:abc", "ghcr.io", "ghcr.io/o/app", "sha256:abc"),
])
def test_a_reference_names_its_registry_repository_and_tag(
        ref: str, registry: str, repository: str, tag: str) -> None:
    assert registry_of(ref) == registry
    assert split_reference(ref) == (repository, tag)


def _config(tmp_path: Path, data: dict[str, object]) -> dict[str, str]:
    (tmp_path / "config.json").write_text(json.dumps(data))
    return {"DOCKER_CONFIG": str(tmp_path), "PATH": str(tmp_path)}


def _basic(user: str, password: str) -> str:
    return base64.b64encode(f"{user}:{password}".encode()).decode()


@pytest.mark.parametrize("key", ["https://index.docker.io/v1/", "index.docker.io", "docker.io",
                                 "http://index.docker.io/v1/"])
def test_docker_hub_credentials_are_found_under_any_of_its_names(tmp_path: Path, key: str) -> None:
    env = _config(tmp_path, {"auths": {key: {"auth": _basic("hubuser", "hub-pass-1")}}})
    auth = find_auth("library/debian", env)
    assert auth is not None and auth.username == "hubuser" and auth.password == "hub-pass-1"
    assert auth.config() == {"username": "hubuser", "password": "hub-pass-1",
                             "serveraddress": "https://index.docker.io/v1/"}
    assert find_auth("ghcr.io/o/app", env) is None


def test_a_registry_url_key_matches_its_host_and_the_secret_is_redacted(tmp_path: Path) -> None:
    env = _config(tmp_path, {"auths": {
        "https://127.0.0.1:5000/v2/": {"auth": _basic("me", "pw-in-config-77")},
        "other.example:5000": {"identitytoken": "identity-token-88"}}})
    auth = find_auth("127.0.0.1:5000/app:1", env)
    assert auth is not None and auth.password == "pw-in-config-77"
    assert auth.config()["serveraddress"] == "127.0.0.1:5000"
    assert "pw-in-config-77" not in repr(auth)
    header = registry_auth_header(auth.config())
    assert json.loads(base64.urlsafe_b64decode(header)) == auth.config()
    assert redact(f"sent pw-in-config-77 as {header}") == "sent *** as ***"
    token = find_auth("other.example:5000/app", env)
    assert token is not None and token.config() == {"identitytoken": "identity-token-88",
                                                    "serveraddress": "other.example:5000"}
    assert find_auth("127.0.0.1:5001/app", env) is None


def test_no_config_means_an_anonymous_pull(tmp_path: Path) -> None:
    assert find_auth("127.0.0.1:5000/app", {"DOCKER_CONFIG": str(tmp_path / "none")}) is None
    (tmp_path / "config.json").write_text("{not json")
    assert find_auth("127.0.0.1:5000/app", {"DOCKER_CONFIG": str(tmp_path)}) is None


def test_docker_auth_config_in_the_environment_comes_first(tmp_path: Path) -> None:
    env = _config(tmp_path, {"auths": {"127.0.0.1:5000": {"auth": _basic("file", "file-pw")}}})
    env["DOCKER_AUTH_CONFIG"] = json.dumps(
        {"auths": {"127.0.0.1:5000": {"auth": _basic("env", "env-pw-1")}}})
    auth = find_auth("127.0.0.1:5000/app", env)
    assert auth is not None and (auth.username, auth.source) == ("env", "'auths' in DOCKER_AUTH_CONFIG")


def _helper(tmp_path: Path, name: str, script: str) -> None:
    path = tmp_path / f"docker-credential-{name}"
    path.write_text("#!/bin/sh\n" + script)
    path.chmod(0o755)


def test_credential_helpers_speak_the_get_protocol(tmp_path: Path) -> None:
    """credHelpers[registry] wins over credsStore; the helper reads the server on stdin."""
    _helper(tmp_path, "store", 'read server; echo "$server" >> "$0.asked"\n'
                               'echo \'{"ServerURL":"x","Username":"u1","Secret":"store-secret"}\'\n')
    _helper(tmp_path, "tok", 'read server; echo "{\\"Username\\":\\"<token>\\",'
                             '\\"Secret\\":\\"tok-for-$server\\"}"\n')
    env = _config(tmp_path, {"credsStore": "store", "credHelpers": {"ghcr.io": "tok"}})
    hub = find_auth("debian", env)
    assert hub is not None and (hub.username, hub.password) == ("u1", "store-secret")
    assert "credential helper docker-credential-store" in hub.source
    ghcr = find_auth("ghcr.io/o/app:1", env)
    assert ghcr is not None and ghcr.identity_token == "tok-for-ghcr.io"
    assert ghcr.config() == {"identitytoken": "tok-for-ghcr.io", "serveraddress": "ghcr.io"}
    asked = (tmp_path / "docker-credential-store.asked").read_text().split()
    assert asked == ["https://index.docker.io/v1/"]
    assert redact("store-secret tok-for-ghcr.io") == "*** ***"


def test_a_helper_without_the_entry_falls_back_to_auths_and_a_broken_one_is_named(
        tmp_path: Path) -> None:
    _helper(tmp_path, "empty", "echo 'credentials not found in native keychain'; exit 1\n")
    env = _config(tmp_path, {"credsStore": "empty",
                             "auths": {"127.0.0.1:5000": {"auth": _basic("a", "fallback-pw")}}})
    auth = find_auth("127.0.0.1:5000/app", env)
    assert auth is not None and auth.password == "fallback-pw"
    assert find_auth("127.0.0.1:6000/app", env) is None
    _helper(tmp_path, "broken", "echo 'the keychain is locked' >&2; exit 3\n")
    env = _config(tmp_path, {"credsStore": "broken"})
    failed = "docker-credential-broken failed for docker.io: the keychain is locked"
    with pytest.raises(ConfigError, match=re.escape(failed)) as info:
        find_auth("debian", env)
    assert "remove 'broken'" in info.value.hint
    env = _config(tmp_path, {"credsStore": "absent"})
    with pytest.raises(ConfigError, match="docker-credential-absent is not installed"):
        find_auth("debian", env)


def test_a_malformed_auth_entry_says_to_log_in_again(tmp_path: Path) -> None:
    env = _config(tmp_path, {"auths": {"127.0.0.1:5000": {
        "auth": base64.b64encode(b"no-colon").decode()}}})
    with pytest.raises(ConfigError, match="not user:password") as info:
        find_auth("127.0.0.1:5000/app", env)
    assert info.value.hint == "log in again: docker login 127.0.0.1:5000"


def test_progress_lines_fold_layers_and_bytes_and_are_rate_limited() -> None:
    now = [0.0]
    progress = PullProgress("127.0.0.1:5000/x:1", interval=0.5, clock=lambda: now[0])
    lines = [progress.feed({"status": "Pulling from x", "id": "1"})]
    for layer in "abcde":
        lines.append(progress.feed({"status": "Pulling fs layer", "id": layer,
                                    "progressDetail": {}}))
    assert lines == [None] * 6  # nothing moved yet
    assert progress.feed({"status": "Already exists", "id": "a", "progressDetail": {}}) == \
        "pulling 127.0.0.1:5000/x:1 — layer 1/5"
    progress.feed({"status": "Already exists", "id": "b", "progressDetail": {}})
    progress.feed({"status": "Downloading", "id": "c",
                   "progressDetail": {"current": 12_300_000, "total": 20_000_000}})
    progress.feed({"status": "Downloading", "id": "d",
                   "progressDetail": {"current": 0, "total": 20_100_000}})
    assert progress.feed({"status": "Waiting", "id": "e"}) is None  # within the interval
    now[0] = 0.6
    assert progress.feed({"status": "Pull complete", "id": "b"}) == \
        "pulling 127.0.0.1:5000/x:1 — layer 2/5, 12.3/40.1 MB"
    progress.feed({"status": "Download complete", "id": "c"})
    progress.feed({"status": "Pull complete", "id": "c"})
    assert progress.flush() == "pulling 127.0.0.1:5000/x:1 — layer 3/5, 20.0/40.1 MB"
    assert progress.flush() is None


def test_a_failed_pull_quotes_the_registry_and_says_what_to_do() -> None:
    refused = pull_failed("unauthorized: authentication required", "r:5000/a", "r:5000", True)
    assert refused.message == "pulling r:5000/a failed: unauthorized: authentication required"
    assert "were refused: log in again with 'docker login r:5000'" in refused.hint
    assert 'docker.pull = "never"' in refused.hint
    anonymous = pull_failed("no basic auth credentials", "r:5000/a", "r:5000", False)
    assert "log in first: docker login r:5000" in anonymous.hint
    down = pull_failed('Get "http://r:5000/v2/": dial tcp: connection refused', "r:5000/a",
                       "r:5000", False)
    assert "the registry r:5000 cannot be reached" in down.hint
    unknown = pull_failed("manifest unknown", "r:5000/a", "r:5000", False)
    assert "check the image name" in unknown.hint and "docker login r:5000" in unknown.hint


def test_base_images_are_the_from_and_copy_from_images_not_stages() -> None:
    dockerfile = """\
ARG BASE=debian:bookworm-slim
ARG TOOLS
FROM $BASE AS build
FROM --platform=linux/amd64 ${TOOLS} AS tools
FROM scratch AS empty
FROM build
COPY --from=build /a /a
COPY --from=ghcr.io/o/helper:1 /b /b
COPY --from=0 /c /c
FROM 127.0.0.1:5000/x:1 \\
    AS last
"""
    assert base_images(dockerfile, {}) == ["debian:bookworm-slim", "ghcr.io/o/helper:1",
                                           "127.0.0.1:5000/x:1"]
    assert base_images(dockerfile, {"BASE": "alpine:3", "TOOLS": "busybox"}) == [
        "alpine:3", "busybox", "ghcr.io/o/helper:1", "127.0.0.1:5000/x:1"]


def test_nothing_secret_reaches_the_log(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.DEBUG)
    env = _config(tmp_path, {"auths": {"127.0.0.1:5000": {"auth": _basic("me", "log-pw-99")}}})
    assert find_auth("127.0.0.1:5000/app", env) is not None
    assert "log-pw-99" not in caplog.text


def test_editors_see_pull_progress_as_a_phase_with_its_line() -> None:
    from channelcoder.claude.events import Status
    from channelcoder.lsp.describe import Describer

    line = "pulling 127.0.0.1:5000/x:1 — layer 3/5, 12.3/40.1 MB"
    assert Describer().message(Status("pulling-image", line)) == f"pulling image: {line}"
