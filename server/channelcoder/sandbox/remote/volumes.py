"""A container's local mounts as named volumes on a remote engine, filled and read back
through the Engine API.

`plan_layout` turns the mounts a local container would get into volumes: each directory mount
that is not inside another becomes a volume at its place; a mount inside one (the git mirror
at `/workspace/.git`, a submodule's `.git` file) becomes part of that volume's content; the
single files under `/channelcoder` (the CA bundle, the egress forwarder) share one read-only
volume there. Read-write volumes belong to the job, or to the named session whose turns they
carry; read-only ones (the user's object store, the support files) are caches kept on the
engine and brought up to date by content hash.

`fill` creates the volumes and sends what differs from what each holds (a manifest per kept
volume, under the state dir, says what that is); `bring_back` reads the read-write ones after
the job and applies the difference to the local sources. Both go through a helper container
that is created with the volumes but never started (`put_archive` and `get_archive` work on a
created container); only removing paths or giving a new volume to a non-root user starts one.
A warm container already mounts its session's volumes (`Inside`): its turns' small copies, the
removals and the listing go through it instead, so a follow-up makes no helper at all.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import logging
import os
import posixpath
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ...errors import ConfigError
from ...owner import owner_alive, owner_label
from ...state import atomic_write, subdir
from ..container.egress_link import is_link_mount
from ..container.mounts import Mount
from ..engine.api import NotFound
from ..labels import MANAGED, OWNER, SESSION, WORKSPACE_LABEL
from .listing import list_in, list_volumes
from .tree import (
    Applied,
    Remote,
    Signatures,
    Source,
    StatMemo,
    apply,
    changed,
    file_signature,
    read_tar,
    scan_sources,
    tar_of,
)

log = logging.getLogger(__name__)
SUPPORT_ROOT = "/channelcoder"
HELPER_ROOT = "/channelcoder-volumes"
VOLUME_LABEL = "io.channelcoder.volume"
MANY = 1000  # files: from here on a started `tar -x` beats the engine's archive extraction
FETCH_LIMIT = 200  # changed files fetched one by one; more, and the whole volume is read


@dataclass(frozen=True)
class VolumeMount(Mount):
    """A named volume where a local container would have a bind mount."""

    volume: str = ""

    @property
    def bind(self) -> str:
        return f"{self.volume}:{self.container}:{'ro' if self.read_only else 'rw'}"


@dataclass
class Volume:
    name: str
    target: str
    read_only: bool
    sources: list[Source]
    keep: bool  # outlives the job: a session's, or a read-only cache
    back: bool  # what the job changed comes back to the sources
    mount_points: list[str] = field(default_factory=list)  # for volumes mounted inside it
    sent: Signatures = field(default_factory=dict)  # what it held when the job started
    memo: StatMemo = field(default_factory=dict)  # the local files' hashes by their stat
    created: str = ""  # the volume's token: which volume a manifest describes
    labels: dict[str, str] = field(default_factory=dict)  # a session's: its name, workspace


@dataclass(frozen=True)
class Inside:
    """A running container that mounts a layout's volumes at their targets, and its user."""

    container: str
    user: str


@dataclass
class Layout:
    volumes: list[Volume]

    @property
    def mounts(self) -> tuple[VolumeMount, ...]:
        return tuple(VolumeMount(Path(v.name), v.target, v.read_only, volume=v.name)
                     for v in sorted(self.volumes, key=lambda v: v.target.count("/")))


def _name(kind: str, *parts: str) -> str:
    digest = hashlib.sha256("\0".join(parts).encode()).hexdigest()[:20]
    return f"channelcoder-{kind}-{digest}"


def _inside(path: str, top: str) -> bool:
    return path.startswith(top.rstrip("/") + "/")


def plan_layout(mounts: Sequence[Mount], *, scope: str, keep: bool,
                config_target: str, config_keep: bool | None = None) -> Layout:
    """The volumes for these mounts. `scope` names the job, the session or the workspace's
    pooled slot (with `keep`) the read-write volumes belong to; Claude's config dir
    (`config_target`) is named by its host directory (a session's, or the job's own), is kept
    with `config_keep` (default `keep`) and lives on the engine only: never copied back."""
    volumes: list[Volume] = []
    for mount in sorted((m for m in mounts if not is_link_mount(m)),
                        key=lambda m: (m.container.count("/"), m.container)):
        outer = max((v for v in volumes if _inside(mount.container, v.target)),
                    key=lambda v: len(v.target), default=None)
        if outer is not None and not (outer.target == SUPPORT_ROOT and mount.host.is_dir()):
            rel = mount.container[len(outer.target.rstrip("/")) + 1:]
            outer.sources.append(Source(mount.host, rel, mount.read_only or outer.read_only))
            outer.back = outer.back or not (mount.read_only or outer.read_only)
            continue
        if mount.host.is_dir():
            if mount.read_only:
                volume = Volume(_name("cache", str(mount.host)), mount.container, True,
                                [Source(mount.host, "", True)], keep=True, back=False)
            elif mount.container == config_target:
                volume = Volume(_name("config", str(mount.host)), mount.container, False,
                                [Source(mount.host, "")],
                                keep=keep if config_keep is None else config_keep, back=False)
            else:
                volume = Volume(_name("job", scope, mount.container), mount.container, False,
                                [Source(mount.host, "")], keep=keep, back=True)
            volumes.append(volume)
            continue
        parent = posixpath.dirname(mount.container)
        if parent != SUPPORT_ROOT:
            raise ConfigError(
                f"the mount of the single file {mount.host} at {mount.container} cannot be "
                "copied to a remote engine",
                hint="mount the directory that holds it instead (docker.mounts), or use a "
                     "local engine")
        support = next((v for v in volumes if v.target == SUPPORT_ROOT), None)
        if support is None:
            support = Volume(_name("cache", "support"), SUPPORT_ROOT, True, [], keep=True,
                             back=False)
            volumes.append(support)
        support.sources.append(Source(mount.host, posixpath.basename(mount.container), True))
    for volume in volumes:
        volume.mount_points = [v.target[len(volume.target.rstrip("/")) + 1:] for v in volumes
                               if _inside(v.target, volume.target)]
    return Layout(volumes)


# ---------------------------------------------------------------------------------------------
# Manifests: what a kept volume holds


def _manifest_path(engine_id: str, volume: str) -> Path:
    return subdir("remote") / f"{_name('m', engine_id)[-12:]}-{volume}.json"


def _load(engine_id: str, volume: Volume) -> tuple[Signatures, StatMemo]:
    try:
        data = json.loads(_manifest_path(engine_id, volume.name).read_text())
    except (OSError, ValueError):
        return {}, {}
    if data.get("created") != volume.created:
        log.debug("volume %s was made again since its manifest: sending all of it", volume.name)
        return {}, {}
    memo = {k: (int(v[0]), int(v[1]), int(v[2]), str(v[3]))
            for k, v in dict(data.get("memo") or {}).items()}
    return dict(data.get("signatures") or {}), memo


def _save(engine_id: str, volume: Volume) -> None:
    if not volume.keep:
        return
    atomic_write(_manifest_path(engine_id, volume.name), json.dumps(
        {"created": volume.created, "signatures": volume.sent, "memo": volume.memo}).encode())


# ---------------------------------------------------------------------------------------------
# The engine side


@dataclass
class Filled:
    sent_files: int = 0
    sent_bytes: int = 0
    removed: int = 0


def _helper_config(image: str, volumes: list[Volume], labels: Mapping[str, str], *,
                   command: list[str] | None = None, user: str = "0:0") -> dict[str, Any]:
    """A helper container with the volumes at HELPER_ROOT/<index>: no network, root with the
    capabilities to own and read any file, nothing else."""
    binds = [f"{v.name}:{HELPER_ROOT}/{i}:rw" for i, v in enumerate(volumes)]
    return {"Image": image, "Entrypoint": (command or ["true"])[:1],
            "Cmd": (command or ["true"])[1:], "User": user, "Labels": {**labels, MANAGED: "1"},
            "NetworkDisabled": True,
            "HostConfig": {"Binds": binds, "NetworkMode": "none", "CapDrop": ["ALL"],
                           "CapAdd": ["CHOWN", "DAC_OVERRIDE", "FOWNER"],
                           "SecurityOpt": ["no-new-privileges"]}}


def _helper(api: Any, image: str, volumes: list[Volume], labels: Mapping[str, str], *,
            command: list[str] | None = None, user: str = "0:0") -> str:
    config = _helper_config(image, volumes, labels, command=command, user=user)
    return str(api.create_container(config)["Id"])


def _ended_well(api: Any, cid: str, failed: str) -> None:
    """Wait for a helper container; a non-zero exit is a RuntimeError with its last output."""
    status = int(api.wait(cid, timeout=3600).get("StatusCode", -1))
    if status != 0:
        raise RuntimeError(f"{failed} (exit {status}): "
                           f"{api.logs(cid).decode('utf-8', 'replace').strip()[-500:]}")


def _run_helper(api: Any, image: str, volumes: list[Volume], labels: Mapping[str, str],
                script: str) -> None:
    cid = _helper(api, image, volumes, labels, command=["sh", "-c", script])
    try:
        api.start(cid)
        _ended_well(api, cid, "preparing the remote volumes failed")
    finally:
        with contextlib.suppress(Exception):
            api.remove_container(cid, force=True)


def _volume_token(api: Any, volume: Volume, labels: Mapping[str, str]) -> tuple[str, bool]:
    """The volume's own token (a label given when it was made): a manifest written for an
    earlier volume of the same name says nothing about this one. The engine's `CreatedAt` is
    no such mark (it moves as the volume's root directory is written). A job's own volume also
    names its owner, so a process that was killed leaves nothing `reap_volumes` keeps. With
    whether it was made now (its root still belongs to root)."""
    made_now = False
    try:
        found = api.inspect_volume(volume.name)
    except NotFound:
        made_now = True
        made = {**labels, **volume.labels, MANAGED: "1", VOLUME_LABEL: os.urandom(8).hex()}
        if not volume.keep:
            made[OWNER] = owner_label()
        found = api.create_volume(volume.name, made)
    return str((found.get("Labels") or {}).get(VOLUME_LABEL) or ""), made_now


def reap_volumes(api: Any) -> list[str]:
    """Remove the job volumes whose owning process is gone (killed before it removed them).
    One in use by a container is left for next time. Blocking."""
    removed = []
    for volume in api.volumes(filters={"label": [VOLUME_LABEL, OWNER]}):
        owner = str((volume.get("Labels") or {}).get(OWNER) or "")
        if owner and not owner_alive(owner):
            with contextlib.suppress(Exception):
                api.remove_volume(str(volume["Name"]))
                removed.append(str(volume["Name"]))
    return removed


def _extract_in_helper(api: Any, image: str, volumes: list[Volume], labels: Mapping[str, str],
                       plans: list[tuple[Volume, Signatures, StatMemo, list[str]]], *,
                       uid: int, gid: int) -> int:
    """Send one tar of every volume's files to `tar -x` in a started helper, through its
    attached stdin: the engine's own archive extraction (`put_archive`) takes about twice as
    long for thousands of files. Returns the bytes sent."""
    import io
    import tarfile

    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w", format=tarfile.PAX_FORMAT) as tar:
        for index, (volume, local, _, write) in enumerate(plans):
            tar_of(write, local, volume.sources, uid=uid, gid=gid, prefix=f"{index}/",
                   into=tar)
    data = buffer.getvalue()
    binds = [f"{v.name}:{HELPER_ROOT}/{i}:rw" for i, v in enumerate(volumes)]
    cid = str(api.create_container({
        "Image": image, "Entrypoint": ["tar"], "Cmd": ["-x", "-f", "-", "-C", HELPER_ROOT],
        "User": "0:0", "Labels": {**labels, MANAGED: "1"}, "NetworkDisabled": True,
        "OpenStdin": True, "StdinOnce": True, "AttachStdin": True, "AttachStdout": True,
        "AttachStderr": True,
        "HostConfig": {"Binds": binds, "NetworkMode": "none", "CapDrop": ["ALL"],
                       "CapAdd": ["CHOWN", "DAC_OVERRIDE", "FOWNER", "FSETID"],
                       "SecurityOpt": ["no-new-privileges"]}})["Id"])
    try:
        stream = api.attach(cid, stdout=True, stderr=True, stdin=True)
        try:
            api.start(cid)
            view = memoryview(data)
            for start in range(0, len(view), 1 << 20):
                stream.send(bytes(view[start:start + (1 << 20)]))
        finally:
            stream.close()  # the end of its stdin (StdinOnce): tar finishes
        _ended_well(api, cid, "copying the files into the volumes failed (tar)")
    finally:
        with contextlib.suppress(Exception):
            api.remove_container(cid, force=True)
    return len(data)


def _exec_ok(api: Any, inside: Inside, argv: list[str], failed: str) -> None:
    made = api.exec_create(inside.container, ["sh", "-c", '"$@" && echo ok', "sh", *argv],
                           user=inside.user)
    said = bytes(api.exec_start(made["Id"])).decode("utf-8", "replace")
    if not said.endswith("ok\n"):
        raise RuntimeError(f"{failed}: {said.strip()[-500:]}")


def fill(api: Any, engine_id: str, layout: Layout, *, image: str, uid: int | None,
         gid: int | None, labels: Mapping[str, str], inside: Inside | None = None) -> Filled:
    """Create the volumes and send what they lack (through `inside` where it can). Blocking."""
    import shlex

    stats = Filled()
    owner_uid, owner_gid = uid or 0, gid or 0
    plans: list[tuple[Volume, Signatures, StatMemo, list[str]]] = []
    fresh: list[int] = []
    removals: list[str] = []
    removed_inside: list[str] = []
    for index, volume in enumerate(layout.volumes):
        volume.created, made_now = _volume_token(api, volume, labels)
        held, memo = _load(engine_id, volume) if volume.keep else ({}, {})
        if made_now:
            fresh.append(index)
        local = scan_sources(volume.sources, memo)
        for point in volume.mount_points:
            local.setdefault(point, "d")
        write, remove = changed(held, local)
        # A path whose type changed is removed first, so the archive can put the new one.
        remove += [p for p in write if p in held and held[p][:1] != local[p][:1]]
        removals += [f"{HELPER_ROOT}/{index}/{p}" for p in remove]
        if inside is not None and not volume.read_only:
            removed_inside += [f"{volume.target}/{p}" for p in remove]
        volume.sent, volume.memo = local, memo
        if write or remove:
            log.debug("volume %s (%s): %d to send (%s), %d to remove, %d held", volume.target,
                  volume.name, len(write), ", ".join(sorted(write)[:8]), len(remove), len(held))
        plans.append((volume, local, memo, write))
    chown = owner_uid != 0 or owner_gid != 0
    if inside is not None and removals and len(removed_inside) == len(removals) and \
            not (chown and fresh):
        _exec_ok(api, inside, ["rm", "-rf", "--", *removed_inside],
                 "removing files from the volumes failed")
        stats.removed = len(removals)
    elif removals or (chown and fresh):
        script = ""
        if removals:
            script += f"rm -rf -- {shlex.join(removals)}; "
        if chown and fresh:
            roots = [f"{HELPER_ROOT}/{i}" for i in fresh]
            script += f"chown {owner_uid}:{owner_gid} {shlex.join(roots)}"
        _run_helper(api, image, layout.volumes, labels, script.rstrip("; ") or "true")
        stats.removed = len(removals)
    count = sum(len(write) for *_, write in plans)
    if count >= MANY:
        stats.sent_bytes = _extract_in_helper(api, image, layout.volumes, labels, plans,
                                              uid=owner_uid, gid=owner_gid)
    elif count:
        cid = ""
        try:
            for index, (volume, local, _, write) in enumerate(plans):
                if not write:
                    continue
                data = tar_of(write, local, volume.sources, uid=owner_uid, gid=owner_gid)
                if inside is not None and not volume.read_only:
                    api.put_archive(inside.container, volume.target, data)
                else:
                    cid = cid or _helper(api, image, layout.volumes, labels)
                    api.put_archive(cid, f"{HELPER_ROOT}/{index}", data)
                stats.sent_bytes += len(data)
        finally:
            if cid:
                with contextlib.suppress(Exception):
                    api.remove_container(cid, force=True)
    stats.sent_files = sum(1 for _, local, _, write in plans for p in write
                           if local[p].startswith("f:"))
    for volume, *_ in plans:
        _save(engine_id, volume)
    return stats


def bring_back(api: Any, engine_id: str, layout: Layout, *, image: str,
               labels: Mapping[str, str], inside: Inside | None = None) -> list[Applied]:
    """Read the read-write volumes (through `inside`, if given) and apply what the job
    changed to the local sources."""
    back = [v for v in layout.volumes if v.back]
    if not back:
        return []
    results: list[Applied] = []
    if inside is not None:
        roots = [v.target for v in back]
        listed = list_in(api, inside.container, inside.user, roots)
        cid = inside.container
    else:
        roots = [f"{HELPER_ROOT}/{i}" for i in range(len(back))]
        listed = list_volumes(api, _helper_config(image, back, labels), roots, labels)
        cid = _helper(api, image, back, labels)
    try:
        for index, volume in enumerate(back):
            remote = None
            if listed is not None:
                remote = _changed_files(api, cid, roots[index], listed[index], volume.sent)
            if remote is None:
                remote = read_tar(api.get_archive(cid, roots[index]),
                                  posixpath.basename(roots[index]))
            results.append(apply(remote, volume.sent, volume.sources))
            volume.sent = remote.signatures
            _save(engine_id, volume)
    finally:
        if inside is None:
            with contextlib.suppress(Exception):
                api.remove_container(cid, force=True)
    return results


def _changed_files(api: Any, cid: str, root: str, listed: Signatures,
                   sent: Signatures) -> Remote | None:
    """The volume as listed, with the content of the files that differ from what was sent
    (each fetched on its own, and checked against its listed hash); None when so many
    changed that reading the whole volume is cheaper, or a fetched file does not match."""
    write, _ = changed(sent, listed)
    files = [p for p in write if listed[p].startswith("f:")]
    if len(files) > FETCH_LIMIT:
        return None
    remote = Remote(dict(listed), {})
    for path in files:
        name = posixpath.basename(path)
        got = read_tar(api.get_archive(cid, f"{root}/{path}"), "")
        content = got.files.get(name)
        if content is None or file_signature(content, listed[path][2] == "1") != listed[path]:
            return None
        remote.files[path] = content
    return remote


def kept_volumes(api: Any, workspace: Path | None) -> list[dict[str, Any]]:
    """The volumes channelcoder keeps on this engine (all, or a workspace's): name, kind
    (job, config or cache), session and workspace. Blocking."""
    wanted = [VOLUME_LABEL]
    if workspace is not None:
        wanted.append(f"{WORKSPACE_LABEL}={workspace.resolve()}")
    found = []
    for volume in api.volumes(filters={"label": wanted}):
        name, labels = str(volume["Name"]), volume.get("Labels") or {}
        found.append({"name": name, "kind": name.split("-")[1] if name.count("-") > 1 else "",
                      "session": labels.get(SESSION), "workspace": labels.get(WORKSPACE_LABEL)})
    return sorted(found, key=lambda v: (str(v["workspace"] or ""), v["name"]))


def remove_session_volumes(api: Any, session: str, workspace: Path | None) -> list[str]:
    """The volumes a named session kept on this engine (its workspace, its config dir)."""
    wanted = [f"{SESSION}={session}", VOLUME_LABEL]
    if workspace is not None:
        wanted.append(f"{WORKSPACE_LABEL}={workspace.resolve()}")
    removed = []
    for volume in api.volumes(filters={"label": wanted}):
        with contextlib.suppress(Exception):
            api.remove_volume(str(volume["Name"]), force=True)
            removed.append(str(volume["Name"]))
    return removed


def remove_job_volumes(api: Any, layout: Layout) -> None:
    """The volumes that belonged to the job only."""
    for volume in layout.volumes:
        if not volume.keep:
            with contextlib.suppress(Exception):
                api.remove_volume(volume.name, force=True)
