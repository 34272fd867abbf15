"""One sandbox container: its mounts, environment and Claude config dir, and the hardened
create/attach/wait/kill of it."""
