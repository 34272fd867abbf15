"""Remote engines, the local side: trees by content hash, the volumes a container's mounts
become, and bringing a volume's changes back without trusting what the job left there."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from channelcoder.config import build_options
from channelcoder.errors import ConfigError
from channelcoder.sandbox.container.mounts import CONFIG_DIR, Mount
from channelcoder.sandbox.remote.tree import (
    Remote,
    Source,
    apply,
    changed,
    file_signature,
    read_tar,
    scan_sources,
    tar_of,
)
from channelcoder.sandbox.remote.volumes import SUPPORT_ROOT, plan_layout

pytestmark = pytest.mark.timeout(30)


def tree(root: Path, files: dict[str, str]) -> Path:
    for name, text in files.items():
        (root / name).parent.mkdir(parents=True, exist_ok=True)
        (root / name).write_text(text)
    return root


def test_a_follow_up_sends_only_what_changed(tmp_path: Path) -> None:
    root = tree(tmp_path / "ws", {f"f{n}.txt": f"{n}\n" for n in range(50)})
    sources = [Source(root, "")]
    before = scan_sources(sources)
    (root / "f7.txt").write_text("changed\n")
    (root / "f8.txt").unlink()
    (root / "new").mkdir()
    write, remove = changed(before, scan_sources(sources))
    assert sorted(write) == ["f7.txt", "new"] and remove == ["f8.txt"]


def test_a_nested_source_takes_the_place_of_what_is_there(tmp_path: Path) -> None:
    root = tree(tmp_path / "ws", {"a.txt": "a\n", ".git/HEAD": "the user's own\n"})
    mirror = tree(tmp_path / "mirror", {"HEAD": "the mirror's\n"})
    sources = [Source(root, ""), Source(mirror, ".git")]
    content = scan_sources(sources)
    data = tar_of(content, content, sources, uid=0, gid=0)
    back = read_tar(_as_volume_tar(data), "0")
    assert back.files[".git/HEAD"] == b"the mirror's\n"
    assert back.signatures == content


def _as_volume_tar(data: bytes) -> bytes:
    """The tar `get_archive` of the volume's mount point `0` would give for this content."""
    import io
    import tarfile

    out = io.BytesIO()
    with tarfile.open(fileobj=io.BytesIO(data)) as given, \
            tarfile.open(fileobj=out, mode="w") as tar:
        top = tarfile.TarInfo("0")
        top.type = tarfile.DIRTYPE
        tar.addfile(top)
        for member in given:
            handle = given.extractfile(member) if member.isfile() else None
            member.name = f"0/{member.name}"
            tar.addfile(member, handle)
    return out.getvalue()


def test_changes_come_back_and_read_only_sources_do_not(tmp_path: Path) -> None:
    root = tree(tmp_path / "ws", {"a.txt": "a\n", "gone.txt": "x\n"})
    objects = tree(tmp_path / "objects", {"pack": "p\n"})
    sources = [Source(root, ""), Source(objects, "objects", read_only=True)]
    sent = scan_sources(sources)
    remote = Remote(dict(sent), {})
    remote.signatures["a.txt"] = file_signature(b"edited\n", False)
    remote.files["a.txt"] = b"edited\n"
    remote.signatures["run.sh"] = file_signature(b"#!/bin/sh\n", True)
    remote.files["run.sh"] = b"#!/bin/sh\n"
    remote.signatures["objects/pack"] = file_signature(b"tampered\n", False)
    remote.files["objects/pack"] = b"tampered\n"
    del remote.signatures["gone.txt"]
    applied = apply(remote, sent, sources)
    assert (root / "a.txt").read_text() == "edited\n"
    assert os.access(root / "run.sh", os.X_OK)
    assert not (root / "gone.txt").exists()
    assert (objects / "pack").read_text() == "p\n"
    assert sorted(applied.written) == ["a.txt", "run.sh"] and applied.removed == ["gone.txt"]


def test_a_file_changed_here_meanwhile_keeps_the_users_version(tmp_path: Path) -> None:
    root = tree(tmp_path / "ws", {"a.txt": "a\n"})
    sources = [Source(root, "")]
    sent = scan_sources(sources)
    (root / "a.txt").write_text("the user's edit\n")
    remote = Remote({**sent, "a.txt": file_signature(b"job\n", False)}, {"a.txt": b"job\n"})
    applied = apply(remote, sent, sources)
    assert (root / "a.txt").read_text() == "the user's edit\n"
    assert applied.kept_local == ["a.txt"]


def test_a_link_the_job_made_is_never_written_through(tmp_path: Path) -> None:
    outside = tree(tmp_path / "outside", {"secret.txt": "host file\n"})
    root = tree(tmp_path / "ws", {"a.txt": "a\n"})
    sources = [Source(root, "")]
    sent = scan_sources(sources)
    remote = Remote({**sent, "escape": f"l:{outside}",
                     "escape/secret.txt": file_signature(b"overwritten\n", False)},
                    {"escape/secret.txt": b"overwritten\n"})
    apply(remote, sent, sources)
    assert (outside / "secret.txt").read_text() == "host file\n"
    assert (root / "escape").is_symlink()


def test_mounts_become_volumes_and_nested_places_their_content(tmp_path: Path) -> None:
    ws, mirror = tmp_path / "ws", tmp_path / "mirror"
    objects, config = tmp_path / "objects", tmp_path / "config"
    for directory in (ws, mirror, objects, config):
        directory.mkdir()
    ca = tmp_path / "ca.crt"
    ca.write_text("pem\n")
    layout = plan_layout([Mount(ws, "/workspace"), Mount(mirror, "/workspace/.git"),
                          Mount(objects, str(objects), read_only=True),
                          Mount(config, CONFIG_DIR), Mount(ca, "/channelcoder/ca.crt", True)],
                         scope="job\0one", keep=False, config_target=CONFIG_DIR)
    by_target = {v.target: v for v in layout.volumes}
    assert set(by_target) == {"/workspace", str(objects), CONFIG_DIR, SUPPORT_ROOT}
    workspace = by_target["/workspace"]
    assert [(s.host, s.rel) for s in workspace.sources] == [(ws, ""), (mirror, ".git")]
    assert workspace.back and not workspace.keep
    assert by_target[str(objects)].read_only and by_target[str(objects)].keep
    assert not by_target[CONFIG_DIR].back  # Claude's config dir stays on the engine
    assert by_target[SUPPORT_ROOT].mount_points == ["claude"]
    assert all(m.bind.split(":")[0].startswith("channelcoder-") for m in layout.mounts)


def test_a_single_file_mounted_elsewhere_is_refused_with_a_hint(tmp_path: Path) -> None:
    single = tmp_path / "tool.cfg"
    single.write_text("x\n")
    with pytest.raises(ConfigError) as caught:
        plan_layout([Mount(single, "/etc/tool.cfg", True)], scope="job\0x", keep=False,
                    config_target=CONFIG_DIR)
    assert "directory" in (caught.value.hint or "")


def test_docker_remote_is_true_false_or_auto() -> None:
    assert build_options({"docker": {"remote": True}}).docker.remote is True  # type: ignore[union-attr]
    assert build_options({"docker": {"remote": "false"}}).docker.remote is False  # type: ignore[union-attr]
    assert build_options({"docker": {"remote": "auto"}}).docker.remote is None  # type: ignore[union-attr]
    with pytest.raises(ConfigError):
        build_options({"docker": {"remote": "sometimes"}})


def test_an_untrusted_workspace_cannot_set_docker_remote() -> None:
    from channelcoder.config import untrusted_view

    kept, dropped = untrusted_view({"docker": {"remote": False, "memory": "2g"}})
    assert kept == {"docker": {"memory": "2g"}} and dropped == ["docker.remote"]


def test_the_engines_listing_parses_into_signatures() -> None:
    from channelcoder.sandbox.remote.listing import parse

    digest = "a" * 64
    text = ("V\nTd 755 ./src\nTf 755 ./src/run.sh\nTl 777 ./link\nL../elsewhere\n"
            f"H{digest}  ./src/run.sh\nV\n")
    assert parse(text, 2) == [{"src": "d", "src/run.sh": f"f:1:{digest}",
                               "link": "l:../elsewhere"}, {}]
    assert parse(text, 1) is None  # not what was asked for
    assert parse("V\nTf 644 ./a\n", 1) is None  # a file without its hash
    assert parse(f"V\nTf 644 ./a\\nb\nH\\{digest}  ./a\\\\nb\n", 1) is None  # escaped name
