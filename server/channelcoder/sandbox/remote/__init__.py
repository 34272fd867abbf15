"""Jobs on a remote engine: nothing of this machine is bind-mounted, everything is copied.

An engine on another machine would bind-mount *its* directories at our paths. Instead each
place a local job would mount (the workspace, its git mirror, Claude's config dir, the user's
object store, the CA bundle, the egress forwarder) becomes content of a named volume on that
engine, put there through the Engine API (`volumes.py`), and what the job changed in the
read-write ones comes back as files whose content hash differs (`tree.py`). The egress proxy
stays on this machine and is reached through an exec'd channel into the container
(`channel.py`). `detect.py` decides whether an engine is remote; `process.py` runs the
copy-back when claude has ended, before the job's own check after it.
"""
