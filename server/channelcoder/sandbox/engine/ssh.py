"""An engine reached over SSH, the docker CLI's way.

Each connection is a process `ssh [-p PORT] [-l USER] -o ConnectTimeout=N -- HOST docker
system dial-stdio`: the remote docker CLI joins its stdin/stdout to the remote engine's socket,
so the HTTP client speaks to the engine through the process's stdio exactly as through a
socket. The process's stdin and stdout are one end of a socketpair, the client holds the other:
pooling, upgraded streams and `close()` from another thread work as on a unix socket, and the
process is reaped when its connection closes.

A failing ssh (unknown host, refused key, no docker on the remote) exits before the engine
answers; its own stderr line becomes the error (`SSHFailed`).
"""

from __future__ import annotations

import contextlib
import math
import os
import shutil
import socket
import subprocess
import tempfile
import threading
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from urllib.parse import unquote, urlsplit

from .address import EngineConfigError
from .http import Connection, EngineClosed, Response

SSH_EXIT_GRACE = 3.0


class SSHFailed(ConnectionError):
    """ssh ended before the engine answered; the message is ssh's (or the remote's) own."""

    def __init__(self, message: str, hint: str) -> None:
        super().__init__(message)
        self.hint = hint


@dataclass(frozen=True)
class SSHTarget:
    host: str
    user: str | None = None
    port: int | None = None

    def argv(self, connect_timeout: float) -> list[str]:
        """The docker CLI's command line; BatchMode because nobody can answer a prompt (the
        process has no terminal: an editor's server has none, and the CLI's is in use)."""
        args = ["ssh", "-T", "-o", f"ConnectTimeout={max(1, math.ceil(connect_timeout))}",
                "-o", "BatchMode=yes"]
        if self.port is not None:
            args += ["-p", str(self.port)]
        if self.user:
            args += ["-l", self.user]
        return [*args, "--", self.host, "docker", "system", "dial-stdio"]

    def command(self) -> str:
        """What to try by hand when it fails."""
        return " ".join(self.argv(10)[:1] + self.argv(10)[5:])


def ssh_target(url: str) -> SSHTarget:
    """ssh://[user@]host[:port], as the docker CLI accepts it (no path)."""
    parts = urlsplit(url)
    try:
        port = parts.port
    except ValueError:
        port = None
        bad = True
    else:
        bad = False
    if bad or not parts.hostname or parts.path not in ("", "/") or parts.query or parts.password:
        raise EngineConfigError(f"{url} is not an ssh engine address (ssh://[USER@]HOST[:PORT])")
    return SSHTarget(parts.hostname, unquote(parts.username) if parts.username else None, port)


class SSHConnection(Connection):
    """A `Connection` whose far end is an ssh process; closing it ends and reaps the process."""

    def __init__(self, sock: socket.socket, process: subprocess.Popen[bytes],
                 target: SSHTarget) -> None:
        super().__init__(sock)
        self.process = process
        self.target = target

    def request(self, method: str, url: str, body: bytes | None = None,
                headers: Mapping[str, str] | None = None) -> Response:
        try:
            return super().request(method, url, body, headers)
        except (EngineClosed, OSError) as exc:
            raise self.failure(exc) from exc

    def failure(self, exc: BaseException) -> BaseException:
        """ssh's own words when it has exited (or exits within a moment), else `exc`."""
        try:
            code = self.process.wait(SSH_EXIT_GRACE)
        except subprocess.TimeoutExpired:
            return exc
        stderr = self.process.stderr
        text = b""
        if stderr is not None:
            with contextlib.suppress(OSError, ValueError):
                os.set_blocking(stderr.fileno(), False)
                text = stderr.read() or b""
        lines = [line.strip() for line in text.decode("utf-8", "replace").splitlines()
                 if line.strip() and not line.startswith("Warning: Permanently added")]
        said = lines[-1] if lines else f"ssh exited with status {code}"
        return SSHFailed(f"ssh to {self.target.host} failed: {said}", hint=(
            f"check that '{self.target.command()}' works without a prompt: the host key "
            "in ~/.ssh/known_hosts, a key ssh offers by itself (ssh-agent or ~/.ssh/config), "
            "and docker installed for that user on the remote host"))

    def close(self) -> None:
        super().close()
        reap(self.process)


def reap(process: subprocess.Popen[bytes]) -> None:
    if process.poll() is None:
        with contextlib.suppress(OSError):
            process.terminate()
        try:
            process.wait(5)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()
    if process.stderr is not None:
        with contextlib.suppress(OSError):
            process.stderr.close()


def ssh_opener(target: SSHTarget,
               connect_timeout: float) -> Callable[[float | None], Connection]:
    def open_ssh(timeout: float | None) -> Connection:
        binary = shutil.which("ssh")
        if binary is None:
            raise SSHFailed("ssh is not installed on this machine",
                            hint="install the OpenSSH client (e.g. apt-get install "
                                 "openssh-client)")
        ours, theirs = socket.socketpair()
        try:
            process = subprocess.Popen(
                [binary, *target.argv(connect_timeout)[1:]], stdin=theirs.fileno(), stdout=theirs.fileno(),
                stderr=subprocess.PIPE, start_new_session=True, close_fds=True)
        except BaseException:
            ours.close()
            raise
        finally:
            theirs.close()
        ours.settimeout(timeout)
        return SSHConnection(ours, process, target)

    return open_ssh


# ---------------------------------------------------------------------------------------------
# A local socket for docker-py (image builds), each connection carried by a connection of ours


class LocalForward:
    """A unix socket in a private directory; each connection to it is bridged to a new engine
    connection made by `open_connection`. docker-py builds through it as through a local
    engine (its own ssh support would need paramiko, and its ssh processes are not reaped)."""

    def __init__(self, open_connection: Callable[[float | None], Connection]) -> None:
        self._open = open_connection
        self._directory = tempfile.mkdtemp(prefix="channelcoder-engine-")
        self.path = os.path.join(self._directory, "engine.sock")
        self._listener = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        self._listener.bind(self.path)
        self._listener.listen(16)
        self._closed = False
        threading.Thread(target=self._serve, name="engine-forward", daemon=True).start()

    @property
    def url(self) -> str:
        return f"unix://{self.path}"

    def _serve(self) -> None:
        while True:
            try:
                client, _ = self._listener.accept()
            except OSError:
                return
            threading.Thread(target=self._bridge, args=(client,), daemon=True).start()

    def _bridge(self, client: socket.socket) -> None:
        try:
            upstream = self._open(None)
        except OSError:
            client.close()
            return
        back = threading.Thread(target=_pump, args=(upstream.sock, client), daemon=True)
        back.start()
        _pump(client, upstream.sock)
        back.join()
        client.close()
        upstream.close()

    def close(self) -> None:
        if self._closed:
            return
        self._closed = True
        with contextlib.suppress(OSError):
            self._listener.close()
        with contextlib.suppress(OSError):
            os.unlink(self.path)
        with contextlib.suppress(OSError):
            os.rmdir(self._directory)


def _pump(source: socket.socket, target: socket.socket) -> None:
    with contextlib.suppress(OSError):
        while data := source.recv(65536):
            target.sendall(data)
    with contextlib.suppress(OSError):
        target.shutdown(socket.SHUT_WR)
