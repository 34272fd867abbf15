"""A live claude in a warm container on a remote engine, reached through `exec`.

Its live directory cannot be a directory of this machine, so it is in the container (a tmpfs,
`warm.sandbox.REMOTE_TMPFS`), and every look at it is a short shell script exec'd there:
`STATUS` answers alive, idle or ended in one round trip. A turn is one exec (`FOLLOW`): it starts
the turn's output afresh, streams claude's stdout back as it grows (`tail --pid`, so it ends
when claude does, with the exit code on its stderr) and copies its own stdin — the turn's user
message, an interrupt — into claude's stdin FIFO (handed to `cat` explicitly: sh gives a
background command /dev/null). The `tail` of a turn this process stopped following is stopped
by the next turn's script (its pid is kept in the directory), so none piles up.
"""

from __future__ import annotations

import contextlib
import json
import logging
import secrets
import threading
from collections.abc import Callable, Iterator, Sequence
from typing import Any

from .. import engine as eng
from ..warm.live import Live, LiveUnavailable, spawn_in
from ..warm.sandbox import REMOTE_WARM_MOUNT

log = logging.getLogger(__name__)

STATUS = ('d="$1"; if [ -f "$d/exit" ]; then read -r c <"$d/exit"; echo "exit ${c:--1}"; '
          'exit 0; fi; read -r p <"$d/pid" 2>/dev/null && kill -0 "$p" 2>/dev/null || '
          '{ echo gone; exit 0; }; '
          'last=$(grep -v -e \'^{"type":"control_response"\' -e \'^[[:space:]]*$\' "$d/out" '
          '| tail -n 1 | cut -c1-16); '
          'case "$last" in \'\'|\'{"type":"result"\') echo idle;; *) echo busy;; esac')
READY = ('d="$1"; n=0; while [ "$n" -lt 100 ]; do [ -f "$d/exit" ] && break; '
         'read -r p <"$d/pid" 2>/dev/null && kill -0 "$p" 2>/dev/null && { echo ready; exit 0; }; '
         'sleep 0.05; n=$((n + 1)); done; echo gone')
TAIL = 'tail -c "$3" "$1/$2" 2>/dev/null'
SEND = 'exec 3<>"$1/in"; [ -f "$1/exit" ] && exit 0; exec head -c "$2" >&3'
FOLLOW = ('d="$1"; read -r t <"$d/tail" 2>/dev/null && kill "$t" 2>/dev/null; '
          ': >"$d/out"; : >"$d/err"; read -r p <"$d/pid" || exit 1; '
          'tail -c +1 -s 0.05 --pid="$p" -f "$d/out" & t=$!; echo "$t" >"$d/tail"; '
          'exec 3<>"$d/in" 4<&0; cat <&4 >&3 & exec 4<&-; wait "$t"; n=0; '
          'while [ ! -f "$d/exit" ] && [ "$n" -lt 20 ]; do sleep 0.05; n=$((n + 1)); done; '
          'read -r c <"$d/exit" 2>/dev/null; echo "exit ${c:--1}" >&2')


def _exit_code(text: str) -> int:
    word = text.strip().rpartition(" ")[2]
    return int(word) if word.lstrip("-").isdigit() else -1


class ContainerLive(Live):
    """A live claude whose directory is `/channelcoder-warm/live/<id>` in a remote container."""

    def __init__(self, engine: eng.Engine, live_id: str, container_id: str, user: str) -> None:
        self.engine = engine
        self.id = live_id
        self.container_id = container_id
        self.user = user
        self.inside = f"{REMOTE_WARM_MOUNT}/live/{live_id}"
        self._exit: int | None = None
        self._stream: Any = None
        self._send_lock = threading.Lock()

    @classmethod
    async def spawn(cls, engine: eng.Engine, container_id: str, argv: Sequence[str], *,
                    user: str, workdir: str) -> ContainerLive:
        process = cls(engine, f"l-{secrets.token_hex(4)}", container_id, user)
        await spawn_in(engine, process, argv, user=user, workdir=workdir)
        said = await eng.call("starting claude in the warm sandbox", process._run, READY)
        if said.strip() != b"ready":
            raise LiveUnavailable(f"claude did not start in the warm sandbox: "
                                  f"{process.stderr_tail() or 'no output'}")
        return process

    def _run(self, script: str, *args: str) -> bytes:
        api = self.engine.api
        made = api.exec_create(self.container_id, ["sh", "-c", script, "sh", self.inside, *args],
                               user=self.user, stderr=False)
        return bytes(api.exec_start(made["Id"]))

    def _status(self) -> str:
        if self._exit is not None:
            return f"exit {self._exit}"
        try:
            said = self._run(STATUS).decode("ascii", "replace").strip()
        except Exception as exc:
            log.debug("could not ask the live claude's state: %s", exc)
            return "gone"
        if said.startswith("exit"):
            self._exit = _exit_code(said)
        return said

    # -- state -----------------------------------------------------------------------------

    def exit_code(self) -> int | None:
        said = self._status()
        return self._exit if said.startswith("exit") else None

    def ended(self) -> bool:
        return self._exit is not None

    def alive(self) -> bool:
        return self._status() in ("idle", "busy")

    def idle(self) -> bool:
        return self._status() == "idle"

    def stderr_tail(self) -> str:
        with contextlib.suppress(Exception):
            text = self._run(TAIL, "err", str(16 * 1024)).decode("utf-8", "replace").strip()
            return "\n".join(text.splitlines()[-20:])
        return ""

    def output_tail(self, limit: int) -> bytes:
        with contextlib.suppress(Exception):
            return self._run(TAIL, "out", str(limit))
        return b""

    # -- input and output ------------------------------------------------------------------

    def send(self, message: dict[str, Any]) -> None:
        data = (json.dumps(message, ensure_ascii=False) + "\n").encode()
        with self._send_lock:
            stream = self._stream
        try:
            if stream is not None:
                stream.send(data)
                return
            if self._status().startswith(("exit", "gone")):
                raise LiveUnavailable("the live claude process is gone")
            api = self.engine.stream_api
            made = api.exec_create(self.container_id,
                                   ["sh", "-c", SEND, "sh", self.inside, str(len(data))],
                                   user=self.user, stdin=True, stderr=False)  # stdout: see its end
            once = api.exec_stream(made["Id"])
            try:
                once.send(data)
            except BaseException:
                once.close()
                raise
            once.close_when_done()  # `head` has passed it on and ended
        except OSError as exc:
            raise LiveUnavailable(f"the live claude process cannot be reached: {exc}") from exc

    def follow_turn(self, stop: threading.Event, dead: Callable[[], bool]) -> Iterator[bytes]:
        api = self.engine.stream_api
        made = api.exec_create(self.container_id, ["sh", "-c", FOLLOW, "sh", self.inside],
                               user=self.user, stdin=True)
        stream = api.exec_stream(made["Id"])
        with self._send_lock:
            self._stream = stream
        return self._follow(stream, stop)

    def _follow(self, stream: Any, stop: threading.Event) -> Iterator[bytes]:
        said = b""
        try:
            for out, err in stream:
                if stop.is_set():
                    return
                if err:
                    said += err
                if out:
                    yield out
        except Exception as exc:
            if not stop.is_set():
                log.debug("following the live claude ended: %r", exc)
        finally:
            if b"exit " in said:
                self._exit = _exit_code(said.decode("utf-8", "replace").splitlines()[-1])
            self.close()

    def close(self) -> None:
        with self._send_lock:
            stream, self._stream = self._stream, None
        if stream is not None:
            with contextlib.suppress(Exception):
                stream.close()

