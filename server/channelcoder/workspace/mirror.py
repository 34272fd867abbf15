"""The sandbox's own git dir for a job that works in the user's repository (in place, a worktree).

The user's git dir never enters the sandbox. Instead a *mirror* — a git dir channelcoder writes
under the state dir — is mounted where the job's git looks (over `/workspace/.git`, or behind a
read-only `.git` file for a linked worktree). It has channelcoder's own config (a few harmless
settings copied from the user's), the user's refs, HEAD and index, and borrows their objects
read-only (alternates). Git works normally inside: status, diff, add, commit, branch, stash.

After the job, on the host: the mirror is reclaimed (`gitdir.reclaim`: whatever the job changed
in its control files is undone and reported), then what git work the job did comes back — new
commits and other objects are fetched with fsck on, moved refs are compare-and-swapped (a branch
the user moved meanwhile is not overwritten: Claude's tip is kept beside it), HEAD follows, and
the staged tree is read into the user's index with its stat data kept. Every host git call runs
under `gitcmd.run_git`, which disables the programs a repository's configuration names.

A mirror is locked while its job runs; a mirror left active by a process that died is brought
back the next time a job starts in that repository (`recover`).
"""

from __future__ import annotations

import contextlib
import hashlib
import logging
import os
import re
import stat
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from .. import hostfs
from ..claude.events import SecurityEvent
from ..errors import ChannelCoderError, GitError
from ..state import HeldLock, read_json, subdir, try_lock, write_json
from .gitcmd import ZERO, Repo, find_repo, git_text, run_git, split_z
from .gitdir import SNAPSHOT_GIT_CONFIG, alternates_for, object_mounts, reclaim, remove_entry
from .workplace import AfterJob, PlaceMount

log = logging.getLogger(__name__)
CONTAINER_GIT = "/channelcoder/git"
POINTER = b"gitdir: " + CONTAINER_GIT.encode() + b"\n"
BROUGHT_BACK = re.compile(r"^refs/(heads|tags|notes)/|^refs/stash$")
_COPIED_SETTINGS = (
    r"^(user\.(name|email)|core\.(filemode|ignorecase|precomposeunicode|symlinks|autocrlf|eol|"
    r"safecrlf|quotepath|checkstat|trustctime)|extensions\.objectformat|i18n\.[a-z]+|"
    r"init\.defaultbranch|branch\..+\.(remote|merge|rebase)|remote\..+\.fetch|"
    r"diff\.(renames|algorithm)|status\.[a-z]+|merge\.conflictstyle)$")
_REFLOG = "channelcoder: from the sandbox"
_STATE_LIMIT = 1 << 16


def mirrors_dir() -> Path:
    return subdir("gitmirrors")


@dataclass
class Mirror:
    """A job's git dir in the sandbox, for the user's repository `repo`."""

    root: Path
    repo: Repo
    workspace: Path
    keep: bool = False
    # A submodule's mirror sits in its superproject's (`modules/<name>`); `rel` is its work
    # tree below the job's directory, `inside` its git dir's path in the sandbox.
    git_dir: Path = Path()
    rel: str = ""
    inside: str = "/workspace/.git"
    pointer: bytes = b""
    children: list[Mirror] = field(default_factory=list)
    filled: bool = False  # by `fill_ahead`, moments before its job took it
    filling: threading.Thread | None = field(default=None, repr=False)
    _lock: HeldLock | None = field(default=None, repr=False)

    def __post_init__(self) -> None:
        if self.git_dir == Path():
            self.git_dir = self.root / "git"
        if not self.rel and (self.repo.top / ".git").is_dir():
            self.children = _submodules(self)

    def wait_filled(self) -> None:
        if self.filling is not None:
            self.filling.join()

    @property
    def shown_as(self) -> str:
        return ".git" + self.inside.removeprefix("/workspace/.git")

    @property
    def config(self) -> bytes:
        return hostfs.read_regular(self.root / "config", _STATE_LIMIT)

    def mounts(self) -> tuple[PlaceMount, ...]:
        """The mirror where the job's git finds it, and the user's objects read-only; each
        submodule's `.git` file read-only, pointing at its mirror."""
        objects = tuple(PlaceMount(p, str(p), read_only=True) for p in object_mounts(self.repo))
        nested = tuple(m for child in self.children for m in child.mounts())
        if self.rel:  # its git dir is a mount point too, so it cannot be renamed away
            return (PlaceMount(self.root / "dotgit", f"{self.rel}/.git", read_only=True),
                    PlaceMount(self.git_dir, self.inside), *objects, *nested)
        if (self.repo.top / ".git").is_dir():
            return (PlaceMount(self.git_dir, ".git"), *objects, *nested)
        return (PlaceMount(self.root / "dotgit", ".git", read_only=True),
                PlaceMount(self.git_dir, CONTAINER_GIT), *objects)

    # -- before the job ----------------------------------------------------------------------

    def fill(self) -> list[SecurityEvent]:
        """Make the mirror say what the user's repository says now; what a job left in it since
        the last bring-back (a session's warm sandbox) is undone and returned."""
        repo = self.repo
        config = _mirror_config(repo)
        existed = (self.git_dir / "HEAD").exists()
        if not existed:  # a new mirror: reclaim lays out the rest (objects, refs)
            self.git_dir.mkdir(parents=True, exist_ok=True)
            (self.git_dir / "HEAD").write_bytes(b"ref: refs/heads/main\n")
            (self.git_dir / "config").write_bytes(config)
        old_config = (self.root / "config").read_bytes() if (self.root / "config").is_file() \
            else config
        found = reclaim(self.git_dir, old_config, alternates=alternates_for(repo))
        events = found if existed else []
        (self.root / "config").write_bytes(config)
        (self.root / "dotgit").write_bytes(
            f"gitdir: {self.inside}\n".encode() if self.rel else POINTER)
        fd = os.open(self.git_dir, hostfs.DIRECTORY)
        try:
            hostfs.replace_in(fd, "config", config, 0o644)
            refs = _user_refs(repo)
            _write_refs(fd, refs)
            head = f"ref: refs/heads/{repo.branch}" if repo.branch else (repo.head or ZERO)
            hostfs.replace_in(fd, "HEAD", head.encode() + b"\n", 0o644)
            _copy_into(fd, repo.common_dir / "shallow", "shallow")
            _copy_into(fd, repo.common_dir / "logs" / "refs" / "stash", "logs/refs/stash")
            _copy_into(fd, repo.common_dir / "info" / "exclude", "info/exclude")
            index = _read_optional(repo.git_dir / "index")
            split = index is not None and _split_index(repo)
            if index is not None and not split:
                hostfs.replace_in(fd, "index", index, 0o644)
            else:
                with contextlib.suppress(FileNotFoundError):
                    os.unlink("index", dir_fd=fd)
        finally:
            os.close(fd)
        given = index
        if split:  # its shared part is not in the mirror: the staged tree is read instead
            run_git(["read-tree", repo.head or "--empty"], git_dir=self.git_dir, check=False)
            given = _read_optional(self.git_dir / "index")
        if given is None:
            (self.root / "index.start").unlink(missing_ok=True)
        else:
            (self.root / "index.start").write_bytes(given)
        write_json(self.root / "start.json", {
            "active": True, "workspace": str(self.workspace), "top": str(repo.top),
            "refs": refs, "head": head, "keep": self.keep, "index": _digest(index),
            "given": _digest(given), "started": time.time()})
        for child in self.children:
            events += child.fill()
        return events

    # -- after the job -----------------------------------------------------------------------

    def bring_back(self) -> AfterJob:
        """Undo what the job changed in the mirror's control files (reported), and bring the
        git work it did into the user's repository (said in `notices`)."""
        start = read_json(self.root / "start.json", None)
        if not isinstance(start, dict) or not start.get("active"):
            return AfterJob()
        try:
            events = reclaim(self.git_dir, self.config, alternates=alternates_for(self.repo),
                             shown_as=self.shown_as)
        except ChannelCoderError:
            start["active"] = False
            write_json(self.root / "start.json", start)
            return AfterJob(events=[SecurityEvent(
                self.shown_as, "emptied or replaced the sandbox's git dir",
                "nothing of it was brought back; your repository is unchanged")])
        after = AfterJob(events=events)
        for child in self.children:
            after.events += child.check_pointer(self.repo.top)
            try:
                found = child.bring_back()
            except ChannelCoderError:
                after.events.append(SecurityEvent(
                    child.shown_as, "the submodule's git dir was moved away or replaced",
                    "its git work was not brought back"))
                continue
            after.events += found.events
            after.notices += [f"{child.rel}: {n}" for n in found.notices]
        try:
            after.notices += _bring_back(self.git_dir, self.repo, start, self.root / "index.start")
        except ChannelCoderError as exc:
            after.notices.append(f"could not bring the sandbox's git work back: {exc.message}")
        start["active"] = False
        write_json(self.root / "start.json", start)
        return after

    def check_pointer(self, top: Path) -> list[SecurityEvent]:
        """A submodule's `.git` file (mounted read-only, but its directory could be renamed
        away): put back as it was, if the job left something else at its place."""
        path = f"{self.rel}/.git"
        try:
            fd = hostfs.open_below(top, self.rel.split("/"))
        except OSError:
            return [SecurityEvent(path, "its directory was replaced by something else",
                                  "check it before you run git there")]
        try:
            with contextlib.suppress(OSError):
                pointer = hostfs.open_in(fd, ".git", os.O_RDONLY, stat.S_IFREG)
                try:
                    if os.pread(pointer, _STATE_LIMIT, 0) == self.pointer:
                        return []
                finally:
                    os.close(pointer)
            remove_entry(fd, ".git")
            hostfs.replace_in(fd, ".git", self.pointer, 0o644)
            return [SecurityEvent(path, "replaced the submodule's .git file", "restored")]
        finally:
            os.close(fd)

    def release(self) -> None:
        import shutil

        if not self.keep:
            with contextlib.suppress(OSError):
                shutil.rmtree(self.root)
        if self._lock is not None:
            self._lock.release()
            self._lock = None


_held: dict[str, Mirror] = {}  # filled ahead of their job in this process (a CLI head start)


def open_mirror(cwd: Path, key: str, *, keep: bool, workspace: Path | None = None,
                repo: Repo | None = None) -> Mirror | None:
    """The mirror for a job in `cwd`, locked (not filled yet); None when `cwd` is not the top of
    a repository's work tree (the sandbox then sees no git dir at all). One this process filled
    ahead of the job (`fill_ahead`) is handed over as it is."""
    held = _held.pop(key, None)
    if held is not None:
        return held
    if not (cwd / ".git").exists():
        return None
    repo = repo or find_repo(cwd)
    if repo is None or repo.top.resolve() != cwd.resolve():
        return None
    root = mirrors_dir() / key
    root.mkdir(parents=True, exist_ok=True)
    lock = try_lock(root / "lock")
    if lock is None:
        raise GitError(f"another job is using the sandbox git dir {root}",
                       hint="wait for it to finish, or give this job its own session")
    mirror = Mirror(root=root, repo=repo, workspace=workspace or cwd, keep=keep, _lock=lock)
    return mirror


def fill_ahead(cwd: Path, key: str) -> Mirror | None:
    """Open a job's mirror before its job exists (so a container created early has its mounts)
    and fill it in a thread meanwhile: `wait_filled()` before the container starts. The job's
    `open_mirror` takes it; `drop_ahead` releases one no job took."""
    dotgit = cwd / ".git"
    plain = dotgit.is_dir() and not dotgit.is_symlink() and not (cwd / ".gitmodules").exists()
    # The common layout needs no git to know the mounts: git itself is asked in the thread.
    guess = Repo(top=cwd, git_dir=dotgit, common_dir=dotgit, head=None, branch=None) \
        if plain else None
    mirror = open_mirror(cwd, key, keep=False, repo=guess)
    if mirror is None:
        return None

    def fill() -> None:
        try:
            if guess is not None:
                found = find_repo(cwd)
                if found is None:
                    return  # the job's own fill reports it
                mirror.repo = found
                if (found.top, found.git_dir, found.common_dir) != \
                        (guess.top, guess.git_dir, guess.common_dir):
                    return  # not what it looked like: the job's launch differs and starts cold
            mirror.fill()
            mirror.filled = True
        except Exception as exc:  # the job fills it again and reports the failure
            log.debug("filling the git mirror ahead failed: %s", exc)

    mirror.filling = threading.Thread(target=fill, name="channelcoder-mirror", daemon=True)
    mirror.filling.start()
    _held[key] = mirror
    return mirror


def drop_ahead(key: str) -> None:
    mirror = _held.pop(key, None)
    if mirror is not None:
        mirror.wait_filled()
        mirror.release()


def mirror_key(job_id: str, session: str | None, workspace: Path) -> str:
    if not session:
        return f"job-{job_id}"
    digest = hashlib.sha256(f"{session}\0{workspace}".encode()).hexdigest()[:16]
    return f"session-{digest}"


def check_new_repository(cwd: Path) -> AfterJob:
    """A job in a directory without `.git` made one: a repository of its own whose hooks or
    configuration git would run the day the user runs git there. Its config goes back to what
    `git init` writes, its hooks go (its commits stay); a `.git` file pointing elsewhere goes."""
    dotgit = cwd / ".git"
    if not os.path.lexists(dotgit):
        return AfterJob()
    fd = os.open(cwd, hostfs.DIRECTORY)
    try:
        kind = os.stat(".git", dir_fd=fd, follow_symlinks=False).st_mode
        if not stat.S_ISDIR(kind):
            remove_entry(fd, ".git")
            return AfterJob(events=[SecurityEvent(
                ".git", "created a .git that points git at another directory", "removed")])
    finally:
        os.close(fd)
    found = reclaim(dotgit, SNAPSHOT_GIT_CONFIG, outcome="reset to what git init writes")
    events = [e for e in found if e.path != ".git/config" or not e.change.startswith("removes")]
    return AfterJob(events=events, notices=[
        "the job made a new git repository here (.git); its hooks and configuration were reset"]
        if events else [])


def remove_mirror(key: str) -> None:
    """Remove a session's mirror (unless a job is using it: it goes with that job's end)."""
    import shutil

    root = mirrors_dir() / key
    lock = try_lock(root / "lock") if root.is_dir() else None
    if lock is None:
        return
    try:
        start = read_json(root / "start.json", None)
        if isinstance(start, dict) and start.get("active"):
            return  # left by a process that died: the next job here brings it back first
        shutil.rmtree(root, ignore_errors=True)
    finally:
        lock.release()


def recover(top: Path) -> AfterJob:
    """Bring back the mirrors of `top`'s repository whose job's process died mid-run."""
    top = top.resolve()
    found = AfterJob()
    try:
        roots = sorted(mirrors_dir().iterdir())
    except OSError:
        return found
    for root in roots:
        start = read_json(root / "start.json", None)
        if not isinstance(start, dict) or not start.get("active") or start.get("top") != str(top):
            continue
        lock = try_lock(root / "lock")
        if lock is None:
            continue  # its job is still running
        repo = find_repo(top)
        if repo is None:
            lock.release()
            continue
        mirror = Mirror(root=root, repo=repo, workspace=Path(start.get("workspace", top)),
                        keep=bool(start.get("keep")), _lock=lock)
        after = mirror.bring_back()
        found.events += after.events
        found.notices.append("a job in this repository ended without cleaning up; "
                             "what it did in git was checked now")
        found.notices += after.notices
        mirror.release()
    return found


def _submodules(parent: Mirror) -> list[Mirror]:
    """Mirrors of the submodules checked out in `parent`'s work tree whose git dirs are in
    its `modules/` (the layout git gives them), recursively."""
    repo = parent.repo
    if not (repo.top / ".gitmodules").is_file():
        return []
    listed = run_git(["config", "-f", str(repo.top / ".gitmodules"), "-z", "--get-regexp",
                      r"^submodule\..*\.path$"], check=False)
    found = []
    for item in split_z(listed.stdout):
        path = item.partition("\n")[2].strip("/")
        if not path or ".." in path.split("/"):
            continue
        try:
            pointer = hostfs.read_regular(repo.top / path / ".git", 4096)
        except OSError:
            continue
        text = pointer.decode("utf-8", "replace").strip()
        if not text.startswith("gitdir: "):
            continue
        target = Path(os.path.normpath(repo.top / path / text.removeprefix("gitdir: ")))
        try:
            name = target.relative_to(repo.common_dir / "modules").as_posix()
        except ValueError:
            continue
        sub_repo = find_repo(repo.top / path)
        if sub_repo is None or sub_repo.top != repo.top / path:
            continue
        key = hashlib.sha256(name.encode()).hexdigest()[:12]
        child = Mirror(root=parent.root / "modules" / key, repo=sub_repo,
                       workspace=parent.workspace, keep=True,
                       git_dir=parent.git_dir / "modules" / name,
                       rel=f"{parent.rel}/{path}".strip("/"),
                       inside=f"{parent.inside}/modules/{name}", pointer=pointer)
        child.root.mkdir(parents=True, exist_ok=True)
        child.children = _submodules(child)
        found.append(child)
    return found


def _mirror_config(repo: Repo) -> bytes:
    """The mirror's own config: a few settings of the user's that change how git behaves
    inside (identity, line endings, upstreams), none that runs a program or holds a secret."""
    proc = run_git(["config", "-z", "--list"], cwd=repo.top, check=False)
    settings: dict[str, str] = {}
    for item in proc.stdout.decode("utf-8", "surrogateescape").split("\0"):
        key, _, value = item.partition("\n")
        if re.match(_COPIED_SETTINGS, key) and "\n" not in value:
            settings[key] = value
    version = "1" if "extensions.objectformat" in settings else "0"
    lines = ["[core]", f"\trepositoryformatversion = {version}", "\tbare = false",
             "\tlogallrefupdates = true"]
    for key, value in settings.items():
        section, _, rest = key.partition(".")
        subsection, _, name = rest.rpartition(".")
        header = f'[{section} "{_quote(subsection)}"]' if subsection else f"[{section}]"
        lines += [header, f'\t{name} = "{_quote(value)}"']
    return ("\n".join(lines) + "\n").encode("utf-8", "surrogateescape")


def _quote(text: str) -> str:
    return text.replace("\\", "\\\\").replace('"', '\\"')


def _user_refs(repo: Repo) -> dict[str, str]:
    proc = run_git(["for-each-ref", "--format=%(objectname) %(refname)"], cwd=repo.top)
    return _parse_refs(proc.stdout)


def _parse_refs(data: bytes) -> dict[str, str]:
    refs = {}
    for line in data.decode("utf-8", "surrogateescape").splitlines():
        sha, _, name = line.partition(" ")
        if name and not name.startswith("refs/channelcoder/"):
            refs[name] = sha
    return refs


def _head_of(repo: Repo) -> str:
    """HEAD as its file says it: `ref: refs/heads/x` or a commit id."""
    proc = run_git(["symbolic-ref", "-q", "HEAD"], cwd=repo.top, check=False)
    if proc.returncode == 0:
        return f"ref: {git_text(proc)}"
    return repo.head or ZERO


def _write_refs(fd: int, refs: dict[str, str]) -> None:
    """All the user's refs as the mirror's packed refs (its loose refs go)."""
    import shutil

    with contextlib.suppress(FileNotFoundError):
        if stat.S_ISDIR(os.stat("refs", dir_fd=fd, follow_symlinks=False).st_mode):
            shutil.rmtree("refs", dir_fd=fd)
        else:
            os.unlink("refs", dir_fd=fd)
    refs_fd = hostfs.subdir(fd, "refs")
    try:
        for name in ("heads", "tags"):
            os.close(hostfs.subdir(refs_fd, name))
    finally:
        os.close(refs_fd)
    body = "".join(f"{sha} {name}\n" for name, sha in sorted(refs.items()))
    hostfs.replace_in(fd, "packed-refs", f"# pack-refs with: sorted \n{body}".encode(
        "utf-8", "surrogateescape"), 0o644)
    logs = hostfs.subdir(fd, "logs")
    try:
        with contextlib.suppress(OSError):
            shutil.rmtree("refs", dir_fd=logs)
    finally:
        os.close(logs)


def _copy_into(fd: int, source: Path, name: str) -> None:
    """Copy a file of the user's git dir into the mirror (or remove the mirror's, if none)."""
    *parents, leaf = name.split("/")
    opened = [fd]
    try:
        for part in parents:
            opened.append(hostfs.subdir(opened[-1], part))
        data = _read_optional(source)
        if data is None:
            with contextlib.suppress(FileNotFoundError, IsADirectoryError):
                os.unlink(leaf, dir_fd=opened[-1])
        else:
            hostfs.replace_in(opened[-1], leaf, data, 0o644)
    finally:
        for extra in opened[1:]:
            os.close(extra)


def _read_optional(path: Path) -> bytes | None:
    try:
        return path.read_bytes()
    except (FileNotFoundError, IsADirectoryError, NotADirectoryError):
        return None


def _split_index(repo: Repo) -> bool:
    try:
        return any(name.startswith("sharedindex.") for name in os.listdir(repo.git_dir))
    except OSError:
        return False


def _digest(data: bytes | None) -> str | None:
    return hashlib.sha256(data).hexdigest() if data is not None else None


def _write_tree(git_dir: Path, index: Path | None = None) -> str | None:
    """The staged tree of a git dir's index (None with conflicts or no index)."""
    if index is not None and not index.is_file():
        return None
    proc = run_git(["write-tree"], git_dir=git_dir, index=index, check=False)
    return git_text(proc) if proc.returncode == 0 else None


def _staged_tree(git_dir: Path, start: dict[str, Any], given: Path) -> str | None:
    """The tree the job staged, when it differs from the one it was given (else None)."""
    try:
        now = hostfs.read_regular(git_dir / "index", 1 << 31)
    except OSError:
        return None
    if _digest(now) == start.get("given"):
        return None  # untouched: the common case costs no git call
    tree = _write_tree(git_dir)
    return tree if tree is not None and tree != _write_tree(git_dir, given) else None


def _bring_back(git_dir: Path, repo: Repo, start: dict[str, Any], given: Path) -> list[str]:
    before: dict[str, str] = dict(start.get("refs") or {})
    after = _parse_refs(run_git(["for-each-ref", "--format=%(objectname) %(refname)"],
                                git_dir=git_dir).stdout)
    head = hostfs.read_regular(git_dir / "HEAD", 4096).decode("utf-8", "replace").strip()
    tree = _staged_tree(git_dir, start, given)
    moved = {name: (before.get(name), after.get(name)) for name in {*before, *after}
             if BROUGHT_BACK.match(name) and before.get(name) != after.get(name)}
    head_moved = head != start.get("head")
    staged = tree is not None
    wants = {new for _, new in moved.values() if new}
    if head_moved and not head.startswith("ref: "):
        wants.add(head)
    if staged and tree:
        wants.add(tree)
    if not wants and not moved and not head_moved:
        return []
    notices: list[str] = []
    if wants:
        run_git(["-c", "uploadpack.allowAnySHA1InWant=true", "-c", "fetch.fsckObjects=true",
                 "-c", "transfer.fsckObjects=true", "fetch", "--quiet", "--no-tags",
                 "--no-write-fetch-head", "--no-recurse-submodules", str(git_dir),
                 *sorted(wants)], cwd=repo.top)
    for name, (old, new) in sorted(moved.items()):
        notices.append(_move_ref(repo, name, old, new))
    if head_moved:
        notices.append(_move_head(repo, str(start.get("head")), head))
    if staged and tree:
        notices += _stage(repo, tree, start.get("index"))
    return [n for n in notices if n]


def _move_ref(repo: Repo, name: str, old: str | None, new: str | None) -> str:
    short = name.removeprefix("refs/heads/").removeprefix("refs/tags/")
    if new is None:
        return (f"the job deleted {short} inside the sandbox; it is kept here "
                f"(delete it with git if you agree)")
    message = _REFLOG
    if name == "refs/stash":  # `git stash list` shows the reflog's messages
        short = "stash"
        message = git_text(run_git(["log", "-1", "--format=%s", new], cwd=repo.top,
                                   check=False)) or _REFLOG
    done = run_git(["update-ref", "--create-reflog", "-m", message, name, new, old or ZERO],
                   cwd=repo.top, check=False)
    if done.returncode == 0:
        return f"from the sandbox: {short} → {_describe(repo, new)}"
    beside = f"{name}-claude" if name.startswith("refs/heads/") else \
        f"refs/channelcoder/kept/{name.removeprefix('refs/')}"
    run_git(["update-ref", "-m", _REFLOG, beside, new], cwd=repo.top, check=False)
    return (f"{short} moved here while the job ran; Claude's {short} is kept as "
            f"{beside.removeprefix('refs/heads/')} ({_describe(repo, new)})")


def _move_head(repo: Repo, was: str, now: str) -> str:
    current = _head_of(repo)
    if current != was:
        return "HEAD moved here while the job ran; the job's checkout was not brought back"
    if now.startswith("ref: "):
        ref = now.removeprefix("ref: ")
        done = run_git(["symbolic-ref", "-m", _REFLOG, "HEAD", ref], cwd=repo.top, check=False)
        return f"checked out {ref.removeprefix('refs/heads/')}" if done.returncode == 0 else \
            f"could not check out {ref} here: {done.stderr.decode(errors='replace').strip()}"
    done = run_git(["update-ref", "--no-deref", "-m", _REFLOG, "HEAD", now], cwd=repo.top,
                   check=False)
    return f"HEAD detached at {now[:12]}" if done.returncode == 0 else \
        "could not move HEAD as the job did"


def _stage(repo: Repo, tree: str, index_digest: Any) -> list[str]:
    """Read the job's staged tree into the user's index (stat data of unchanged entries kept),
    unless the user's index changed while the job ran."""
    if _digest(_read_optional(repo.git_dir / "index")) != index_digest:
        return ["your index changed while the job ran; the job's staged changes were not "
                "brought back"]
    done = run_git(["read-tree", "--reset", tree], cwd=repo.top, check=False)
    if done.returncode != 0:
        return ["could not bring the job's staged changes back: "
                f"{done.stderr.decode(errors='replace').strip()}"]
    return []


def _describe(repo: Repo, sha: str) -> str:
    proc = run_git(["log", "-1", "--format=%h %s", sha], cwd=repo.top, check=False)
    return git_text(proc) or sha[:12]
