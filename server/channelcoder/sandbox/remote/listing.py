"""What a volume holds, as signatures computed on the engine: so only changed files travel.

After a job, most of its workspace is what was sent. A helper lists each read-write volume
(`find`: type, permissions, link target) and hashes its files (`sha256sum`) where they are, and
prints one line per entry; only the files whose signature differs from what was sent are then
fetched. This needs GNU find and coreutils in the image (Debian and Ubuntu bases have them);
anything else — another `find`, a path with a newline, a helper that fails — returns None, and
the caller reads the whole volume instead.
"""

from __future__ import annotations

import contextlib
import logging
from collections.abc import Mapping
from typing import Any

from .tree import Signatures

log = logging.getLogger(__name__)

# For each volume directory given: a "V" line, then `T<type> <mode> <path>` for every entry
# (and `L<target>` after a link), then `H<sha256>  <path>` for every regular file.
SCRIPT = r'''
set -e
for root in "$@"; do
  printf 'V\n'
  cd "$root"
  find . -mindepth 1 \( -type l -printf 'T%y %m %p\nL%l\n' \) -o -printf 'T%y %m %p\n'
  find . -mindepth 1 -type f -print0 | xargs -0 -r sha256sum -- | sed 's/^/H/'
done
'''


def parse(text: str, count: int) -> list[Signatures] | None:
    """The signatures of `count` volumes from the helper's output; None if it is not that."""
    volumes: list[tuple[Signatures, dict[str, int]]] = []
    link: str | None = None
    for line in text.split("\n"):
        if not line:
            continue
        kind, rest = line[0], line[1:]
        if kind == "V":
            volumes.append(({}, {}))
            continue
        if not volumes:
            return None
        sigs, modes = volumes[-1]
        if kind == "T":
            letter, _, rest = rest.partition(" ")
            mode, _, path = rest.partition(" ")
            if not path.startswith("./") or not mode.isdigit():
                return None
            if letter == "d":
                sigs[path[2:]] = "d"
            elif letter == "l":
                link = path[2:]
            elif letter == "f":
                modes[path[2:]] = int(mode, 8)
        elif kind == "L" and link is not None:
            sigs[link], link = f"l:{rest}", None
        elif kind == "H" and not rest.startswith("\\"):
            digest, sep, path = rest.partition("  ")
            if not sep or len(digest) != 64 or not path.startswith("./"):
                return None
            bits = modes.get(path[2:])
            if bits is None:
                return None
            sigs[path[2:]] = f"f:{int(bool(bits & 0o100))}:{digest}"
        else:
            return None  # sha256sum escapes odd names (a backslash first): not parsed here
    if len(volumes) != count:
        return None
    if any(path not in sigs for sigs, modes in volumes for path in modes):
        return None  # a file without its hash
    return [sigs for sigs, _ in volumes]


def list_in(api: Any, container: str, user: str, roots: list[str]) -> list[Signatures] | None:
    """The listing exec'd in a running container that mounts the volumes at `roots` (a warm
    one), as its user; None on failure (the marker printed last says the script got there)."""
    try:
        made = api.exec_create(container, ["sh", "-c", SCRIPT + "printf 'OK\\n'\n", "sh",
                                           *roots], user=user, stderr=False)
        out = bytes(api.exec_start(made["Id"])).decode("utf-8", "surrogateescape")
    except Exception as exc:
        log.debug("the volume listing failed: %r", exc)
        return None
    if not out.endswith("OK\n"):
        log.debug("the volume listing failed: %s", out[-300:])
        return None
    return parse(out[:-3], len(roots))


def list_volumes(api: Any, helper: dict[str, Any], roots: list[str],
                 labels: Mapping[str, str]) -> list[Signatures] | None:
    """Run the listing in a helper created from `helper` (image, binds…); None on failure."""
    config = {**helper, "Entrypoint": ["sh"], "Cmd": ["-c", SCRIPT, "sh", *roots],
              "AttachStdout": True, "AttachStderr": True}
    cid = ""
    try:
        cid = str(api.create_container(config)["Id"])
        stream = api.attach(cid, stdout=True, stderr=True, logs=True)
        chunks: list[bytes] = []
        errors: list[bytes] = []
        try:
            api.start(cid)
            for out, err in stream:
                if out:
                    chunks.append(out)
                if err:
                    errors.append(err)
        finally:
            stream.close()
        status = int(api.wait(cid, timeout=3600).get("StatusCode", -1))
        if status != 0:
            log.debug("the volume listing failed (exit %d): %s", status,
                      b"".join(errors).decode("utf-8", "replace")[-300:])
            return None
        return parse(b"".join(chunks).decode("utf-8", "surrogateescape"), len(roots))
    except Exception as exc:
        log.debug("the volume listing failed: %r", exc)
        return None
    finally:
        if cid:
            with contextlib.suppress(Exception):
                api.remove_container(cid, force=True)
