"""Warm sessions (issue 4, item 2): real engine, the project's image, the real CLI, scripted model.

A named session's Docker turns share one kept-warm container and, inside it, one live claude
process. Identity checks use what only the same container (or process) can know: a file in the
container's private /tmp, and the live process's directory on the host.
"""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import anyio
import pytest

from channelcoder import Session, session
from channelcoder import sessions as store
from channelcoder.api import build_request
from channelcoder.claude.events import AnyEvent, Error, Result, TextDelta, ToolResult
from channelcoder.jobs import Job
from channelcoder.sandbox.warm.sandbox import WARM_MOUNT, prune_dirs
from channelcoder.session_cleanup import remove_session
from channelcoder.testing.fake_anthropic import Reply, ToolCall, Turn
from tests.plugins.docker import docker_options
from tests.warm.helpers import live_dirs, session_container, wait_gone, warm_containers, warm_dir

pytestmark = [pytest.mark.docker, pytest.mark.usefixtures("claude_bin", "no_leaked_containers")]

HANG_GUARD = 120.0
MARK = {"command": "echo container-$$ > /tmp/turn-mark && cat /tmp/turn-mark"}
READ_MARK = {"command": "cat /tmp/turn-mark 2>&1 || true"}


def outputs(events: list[AnyEvent]) -> list[str]:
    return [e.output.strip() for e in events if isinstance(e, ToolResult)]


def final(events: list[AnyEvent]) -> Result | Error:
    last = events[-1]
    assert isinstance(last, Result | Error), last
    assert sum(isinstance(e, Result | Error) for e in events) == 1
    return last


async def turn(s: Session, prompt: str, **options: Any) -> list[AnyEvent]:
    with anyio.fail_after(HANG_GUARD):
        events = [e async for e in s.stream(prompt, **options)]
    result = final(events)
    assert isinstance(result, Result) and result.ok, result
    return events


def texts(api: Any) -> str:
    return "\n".join(api.agent_requests()[-1].texts())


async def test_a_two_turn_session_runs_in_its_warm_container_and_a_changed_option_starts_a_new_one(
        scripted: Any, sandbox_image: str, git_repo: Path, docker_client: Any) -> None:
    api = scripted([ToolCall("Bash", MARK), Reply("Remember: TANGERINE."),
                    ToolCall("Bash", READ_MARK), Reply("It was TANGERINE."),
                    ToolCall("Bash", READ_MARK), Reply("Still TANGERINE."),
                    ToolCall("Bash", READ_MARK), Reply("Yes, TANGERINE.")])
    s = session("warm-two", workspace=git_repo, docker=docker_options(sandbox_image, keep_warm=120))
    one = await turn(s, "first turn")
    assert not any("reusing the warm sandbox" in getattr(e, "message", "") for e in one)
    (mark,) = outputs(one)
    first = session_container(docker_client, "warm-two")
    live = live_dirs(warm_dir(warm_containers(docker_client)[0]))
    # the next turn (a new Session object, as another caller would load it) resumes the
    # conversation in the same container and the same live claude process
    two = await turn(Session.load("warm-two"), "which fruit?")
    assert f"reusing the warm sandbox {first[:12]} of session warm-two" in [
        getattr(e, "message", "") for e in two]
    assert outputs(two) == [mark]
    assert "first turn" in texts(api) and "Remember: TANGERINE." in texts(api)
    assert session_container(docker_client, "warm-two") == first
    assert live_dirs(warm_dir(warm_containers(docker_client)[0])) == live
    state = store.load("warm-two")
    assert state is not None and state.warm is not None and state.warm["containerId"] == first
    assert state.current_session_id == final(two).session_id  # type: ignore[union-attr]
    # another claude option: same container, a fresh `claude --resume` in it
    three = await turn(s, "and now?", append_system="Answer briefly.")
    assert outputs(three) == [mark] and "which fruit?" in texts(api)
    assert "Answer briefly." in api.agent_requests()[-1].system
    assert len(live_dirs(warm_dir(warm_containers(docker_client)[0]))) == 2
    # another Docker option: a new container (no mark in its /tmp), the conversation resumed
    four = await turn(s, "still?", docker=docker_options(sandbox_image, keep_warm=120,
                                                         memory="3g"))
    assert not any("reusing the warm sandbox" in getattr(e, "message", "") for e in four)
    assert outputs(four) == ["cat: /tmp/turn-mark: No such file or directory"]
    assert "and now?" in texts(api)
    assert session_container(docker_client, "warm-two") != first
    wait_gone(docker_client, first)
    assert remove_session("warm-two")
    assert not warm_containers(docker_client)


def test_another_process_continues_in_the_warm_sandbox(
        scripted: Any, sandbox_image: str, git_repo: Path, docker_client: Any) -> None:
    api = scripted([ToolCall("Bash", MARK), Reply("Noted: PAPAYA."),
                    ToolCall("Bash", READ_MARK), Reply("It was PAPAYA.")])

    def cli(prompt: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [sys.executable, "-m", "channelcoder", "run", "--session", "cross", "--docker-image",
             sandbox_image, "--json", "-p", prompt],
            cwd=git_repo, env=dict(os.environ), capture_output=True, text=True,
            timeout=HANG_GUARD)

    first = cli("remember papaya")
    assert first.returncode == 0, first.stderr
    container = session_container(docker_client, "cross")
    live = live_dirs(warm_dir(warm_containers(docker_client)[0]))
    second = cli("which fruit?")  # a new process: it finds the container and its claude
    assert second.returncode == 0, second.stderr
    assert "It was PAPAYA." in second.stdout
    assert "remember papaya" in texts(api) and "Noted: PAPAYA." in texts(api)
    assert session_container(docker_client, "cross") == container
    assert live_dirs(warm_dir(warm_containers(docker_client)[0])) == live
    assert "container-" in api.agent_requests()[-1].last_user_text()  # the mark was there
    done = subprocess.run([sys.executable, "-m", "channelcoder", "sessions", "rm", "cross"],
                          cwd=git_repo, capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr
    wait_gone(docker_client, container)


def test_keep_warm_0_on_the_command_line_leaves_no_sandbox_behind(
        scripted: Any, sandbox_image: str, git_repo: Path, docker_client: Any) -> None:
    scripted([Reply("Done, nothing kept.")])
    done = subprocess.run(
        [sys.executable, "-m", "channelcoder", "run", "--session", "cold", "--docker-image",
         sandbox_image, "--keep-warm", "0", "-p", "hello"],
        cwd=git_repo, env=dict(os.environ), capture_output=True, text=True, timeout=HANG_GUARD)
    assert done.returncode == 0, done.stderr
    assert "Done, nothing kept." in done.stdout
    assert not warm_containers(docker_client)


def live_job(prompt: str, workspace: Path, name: str, image: str) -> Job:
    built = build_request(prompt, workspace=workspace, flags={
        "session": name, "docker": docker_options(image, keep_warm=120)})
    return Job(built)


async def get_ready(workspace: Path, name: str, image: str, docker_client: Any) -> str:
    """A session's first turn ("get ready"), which leaves its warm container; the container id."""
    first = final([e async for e in live_job("get ready", workspace, name, image).events()])
    assert isinstance(first, Result) and first.ok, first
    return session_container(docker_client, name)


async def run_cancelled(job: Job, before_cancel: Any = None) -> tuple[list[AnyEvent], float]:
    events: list[AnyEvent] = []
    cancelled_at = 0.0
    with anyio.fail_after(HANG_GUARD):
        async for event in job.events():
            events.append(event)
            if isinstance(event, TextDelta) and not cancelled_at:
                if before_cancel is not None:
                    before_cancel()
                cancelled_at = time.monotonic()
                job.cancel()
    return events, time.monotonic() - cancelled_at


SLOW = Turn([Reply("slowly " * 200)], chunks=200, delay=0.05)


async def test_cancelling_a_live_turn_interrupts_it_and_keeps_the_process(
        scripted: Any, sandbox_image: str, git_repo: Path, docker_client: Any) -> None:
    api = scripted([ToolCall("Bash", MARK), Reply("Ready."), SLOW,
                    ToolCall("Bash", READ_MARK), Reply("Back.")])
    container = await get_ready(git_repo, "cancel-live", sandbox_image, docker_client)
    live = live_dirs(warm_dir(warm_containers(docker_client)[0]))
    events, _ = await run_cancelled(live_job("talk slowly", git_repo, "cancel-live",
                                             sandbox_image))
    last = final(events)
    assert isinstance(last, Error) and last.code == "cancelled", last
    # the interrupt stopped the turn; the same process takes the next one
    again = [e async for e in live_job("are you there?", git_repo, "cancel-live",
                                       sandbox_image).events()]
    assert isinstance(final(again), Result) and final(again).ok, final(again)  # type: ignore[union-attr]
    assert outputs(again)[0].startswith("container-")
    assert "[Request interrupted by user]" in texts(api)
    assert session_container(docker_client, "cancel-live") == container
    assert live_dirs(warm_dir(warm_containers(docker_client)[0])) == live
    assert remove_session("cancel-live")


async def test_a_live_turn_that_ignores_the_interrupt_is_killed_with_its_container(
        scripted: Any, sandbox_image: str, git_repo: Path, docker_client: Any) -> None:
    api = scripted([Reply("Ready."), SLOW, Reply("New container.")])
    container = await get_ready(git_repo, "stuck-live", sandbox_image, docker_client)
    (live,) = live_dirs(warm_dir(warm_containers(docker_client)[0]))

    def freeze() -> None:  # claude stops reading its stdin: the interrupt goes unanswered
        pid = f"/channelcoder/warm/live/{live}/pid"
        docker_client.api.exec_start(docker_client.api.exec_create(
            container, ["sh", "-c", f'kill -STOP "$(cat {pid})"'])["Id"])

    events, waited = await run_cancelled(live_job("talk slowly", git_repo, "stuck-live",
                                                  sandbox_image), before_cancel=freeze)
    last = final(events)
    assert isinstance(last, Error) and last.code == "cancelled", last
    assert waited >= 2.0  # the interrupt's grace came first
    wait_gone(docker_client, container)
    again = final([e async for e in live_job("still there?", git_repo, "stuck-live",
                                             sandbox_image).events()])
    assert isinstance(again, Result) and again.ok, again
    assert "get ready" in texts(api)  # resumed in a new container
    assert session_container(docker_client, "stuck-live") != container
    assert remove_session("stuck-live")


EXTEND = {"command": "ls /channelcoder/warm; echo 9999999999 > /channelcoder/warm/clock/expires"}


async def test_an_expired_warm_sandbox_goes_away_by_itself_whatever_the_job_does(
        scripted: Any, sandbox_image: str, git_repo: Path, docker_client: Any) -> None:
    scripted([ToolCall("Bash", EXTEND), Reply("Tried to stay.")])
    s = session("expiring", workspace=git_repo, docker=docker_options(sandbox_image, keep_warm=2))
    (tried,) = outputs(await turn(s, "hello"))
    assert "clock" in tried and "live" in tried and "lease" not in tried, tried
    assert "Read-only file system" in tried
    container = session_container(docker_client, "expiring")
    directory = warm_dir(warm_containers(docker_client)[0])
    wait_gone(docker_client, container, guard=15)  # its watchdog, no channelcoder process
    assert directory.is_dir()  # until a process's housekeeping forgets it
    assert directory in prune_dirs(docker_client.api, grace=0) and not directory.exists()
    assert remove_session("expiring")


async def test_any_channelcoder_process_reaps_an_expired_warm_sandbox(
        scripted: Any, sandbox_image: str, git_repo: Path, docker_client: Any) -> None:
    scripted([Reply("Short-lived.")])
    # long enough for a loaded machine to pause it before its own watchdog ends it
    s = session("reaped", workspace=git_repo, docker=docker_options(sandbox_image, keep_warm=5))
    await turn(s, "hello")
    container = session_container(docker_client, "reaped")
    docker_client.api.pause(container)  # its own watchdog cannot act
    await anyio.sleep(6)  # past the lease
    assert any(c["Id"] == container for c in warm_containers(docker_client))
    reaper = ("import anyio; from channelcoder.sandbox.manager import SandboxManager; "
              "anyio.run(SandboxManager().engine)")
    with anyio.fail_after(60):
        done = await anyio.run_process([sys.executable, "-c", reaper], check=False)
    assert done.returncode == 0, done.stderr.decode()
    wait_gone(docker_client, container)
    assert remove_session("reaped")


async def test_a_warm_container_killed_mid_turn_fails_the_turn_and_the_next_one_starts_anew(
        scripted: Any, sandbox_image: str, git_repo: Path, docker_client: Any) -> None:
    api = scripted([Reply("Ready."), SLOW, Reply("Fresh start.")])
    container = await get_ready(git_repo, "killed-live", sandbox_image, docker_client)
    events: list[AnyEvent] = []
    with anyio.fail_after(HANG_GUARD):
        async for event in live_job("talk slowly", git_repo, "killed-live",
                                    sandbox_image).events():
            events.append(event)
            if isinstance(event, TextDelta) and sum(isinstance(e, TextDelta)
                                                    for e in events) == 1:
                docker_client.api.kill(container)
    last = final(events)
    assert isinstance(last, Error) and "stopped from outside" in last.message, last
    wait_gone(docker_client, container)
    again = final([e async for e in live_job("still there?", git_repo, "killed-live",
                                             sandbox_image).events()])
    assert isinstance(again, Result) and again.ok, again
    assert "get ready" in texts(api)
    assert remove_session("killed-live")


async def test_a_job_cannot_make_the_host_write_through_its_live_files(
        scripted: Any, sandbox_image: str, git_repo: Path, docker_client: Any,
        tmp_path: Path) -> None:
    """The live directory is writable inside: links planted there must not reach host files."""
    victims = {name: tmp_path / f"precious-{name}.txt" for name in ("in", "out", "err")}
    for victim in victims.values():
        victim.write_text("precious\n")
    plant = " && ".join(f"rm {name} && ln -s {victim} {name}" for name, victim in victims.items())
    api = scripted([ToolCall("Bash", {"command": f"cd {WARM_MOUNT}/live/l-* && {plant} && ls"}),
                    Reply("Planted."), Reply("Still here.")])
    await get_ready(git_repo, "planted", sandbox_image, docker_client)
    with anyio.fail_after(HANG_GUARD):
        again = [e async for e in live_job("and now?", git_repo, "planted", sandbox_image).events()]
    result = final(again)
    assert isinstance(result, Result) and result.ok and result.text == "Still here.", result
    assert "Planted." in texts(api)  # the conversation went on
    assert {name: v.read_text() for name, v in victims.items()} == dict.fromkeys(victims,
                                                                                "precious\n")
    assert remove_session("planted")
