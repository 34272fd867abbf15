"""The Docker sandbox: image resolution and builds, mounts, hardened containers."""
