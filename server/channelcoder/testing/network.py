"""Where a container on Docker's default network reaches this machine (for benchmarks that
compare against a bare `docker run`, whose network is the bridge)."""

from __future__ import annotations

import subprocess


def bridge_gateway() -> str:
    """The host's address on Docker's default bridge network."""
    done = subprocess.run(["docker", "network", "inspect", "bridge", "--format",
                           "{{(index .IPAM.Config 0).Gateway}}"],
                          capture_output=True, text=True, check=True)
    return done.stdout.strip()
