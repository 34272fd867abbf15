"""A truly remote Docker engine for the tests that need one (`remote_engine`).

`scripts/remote-engine.sh` starts it (idempotently): dockerd in a container of the local
engine that sees none of this machine's files, reached over TCP with TLS on 127.0.0.1 and over
ssh:// with key authentication, with the sandbox image loaded. Like the other engine fixtures
it skips locally without a Docker engine and fails in CI. Whatever a run's managers made on it
(labelled with the run's label) is removed at the end of the session.
"""

from __future__ import annotations

import contextlib
import os
import subprocess
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from tests.plugins.docker import RUN_ID, RUN_LABEL

ROOT = Path(__file__).resolve().parents[2]
SCRIPT = ROOT / "scripts" / "remote-engine.sh"


@dataclass(frozen=True)
class RemoteEngine:
    tls_host: str
    cert_path: Path
    ssh_host: str
    ssh_bin: Path

    def tls_env(self) -> dict[str, str]:
        return {"DOCKER_HOST": self.tls_host, "DOCKER_TLS_VERIFY": "1",
                "DOCKER_CERT_PATH": str(self.cert_path)}

    def ssh_env(self) -> dict[str, str]:
        """DOCKER_HOST=ssh://…, and PATH with an `ssh` that uses the engine's key and host key
        (what the user's ~/.ssh/config would say)."""
        return {"DOCKER_HOST": self.ssh_host,
                "PATH": f"{self.ssh_bin}{os.pathsep}{os.environ.get('PATH', '')}"}

    def client(self) -> Any:
        import docker
        from docker.tls import TLSConfig

        tls = TLSConfig(client_cert=(str(self.cert_path / "cert.pem"),
                                     str(self.cert_path / "key.pem")),
                        ca_cert=str(self.cert_path / "ca.pem"), verify=True)
        # requests would let REQUESTS_CA_BUNDLE replace the engine's CA: not from the environment.
        client = docker.DockerClient(base_url=self.tls_host, tls=tls, timeout=60, version="1.41")
        client.api.trust_env = False
        return client


def _read_env(path: Path) -> dict[str, str]:
    pairs = (line.partition("=") for line in path.read_text().splitlines() if "=" in line)
    return {name: value for name, _, value in pairs}


@pytest.fixture(scope="session")
def remote_engine(docker_client: Any, sandbox_image: str) -> Iterator[RemoteEngine]:
    """The remote engine, started (or reused) by the project's script, the sandbox image in it."""
    cache = Path(os.environ.get("CHANNELCODER_CACHE", ROOT / ".cache"))
    done = subprocess.run([str(SCRIPT), sandbox_image], capture_output=True, text=True,
                          timeout=1200, env={**os.environ, "CHANNELCODER_CACHE": str(cache)})
    if done.returncode != 0:
        pytest.fail(f"the remote engine could not be started:\n{done.stderr[-3000:]}")
    env = _read_env(cache / "remote-engine" / "env")
    engine = RemoteEngine(env["REMOTE_TLS_HOST"], Path(env["REMOTE_CERT_PATH"]),
                          env["REMOTE_SSH_HOST"], Path(env["REMOTE_SSH_BIN"]))
    yield engine
    client = engine.client()
    label = {"label": f"{RUN_LABEL}={RUN_ID}"}
    for container in client.api.containers(all=True, filters=label):
        with contextlib.suppress(Exception):
            client.api.remove_container(container["Id"], force=True)
    for volume in client.api.volumes(filters=label).get("Volumes") or []:
        with contextlib.suppress(Exception):
            client.api.remove_volume(volume["Name"], force=True)
    client.close()
