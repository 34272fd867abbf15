"""An editor asks before the sandbox reaches a host outside the allowlist: real server, engine,
CLI in the sandbox (the default `proxy` network mode), scripted model.

The host asked about is `localhost:<port>` of a service on this machine's loopback; the
allowlist names its literal addresses (so the proxy may connect there once allowed) but not the
name, so the proxy asks. The job's connection waits for the answer.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from channelcoder.allowances import allowed_hosts
from channelcoder.lsp.network_ask import ALLOW_JOB, ALWAYS, DENY
from channelcoder.testing.fake_anthropic import FakeAnthropic, Reply, ToolCall
from tests.lsp.conftest import Session, Start
from tests.sandbox.test_egress_sandbox import local_service

pytestmark = [pytest.mark.docker, pytest.mark.usefixtures("claude_bin", "no_leaked_containers"),
              pytest.mark.filterwarnings("ignore:Unknown progress token")]
__all__ = ["local_service"]

SERVED = "the host's local service"


def fetch(port: int) -> ToolCall:
    return ToolCall("Bash", {"command": f"curl -fsS -m 90 --noproxy '' -x http://127.0.0.1:3128 "
                                        f"http://localhost:{port}/; echo exit=$?"})


def settings(image: str, port: int) -> dict[str, Any]:
    return {"docker": {"image": image, "networkAllow": [f"127.0.0.1:{port}", f"[::1]:{port}"]},
            "standby": False, "streamEvents": True}


async def fetch_job(lsp: Start, scripted: Any, workspace: Path, image: str, port: int,
                    answer: str | None) -> tuple[Session, FakeAnthropic, dict[str, Any]]:
    api = scripted([fetch(port), Reply("Fetched.")])
    session = await lsp(workspace, init=settings(image, port), trust_answer=answer)
    reply: dict[str, Any] = await session.command("channelcoder.run", {"prompt": "fetch it"})
    assert reply["ok"] is True, reply
    return session, api, reply


def asked(session: Session, port: int) -> list[str]:
    return [r.message for r in session.requests if f"localhost:{port}" in r.message]


def tool_output(api: FakeAnthropic) -> str:
    return "\n".join(api.agent_requests()[-1].texts())


def blocked(session: Session, job_id: str) -> list[dict[str, Any]]:
    return [e for e in session.job_events(job_id) if e["type"] == "networkBlocked"]


async def test_allow_for_this_job_lets_the_waiting_connection_through(
        scripted: Any, lsp: Start, workspace: Path, sandbox_image: str,
        local_service: int) -> None:
    session, api, reply = await fetch_job(lsp, scripted, workspace, sandbox_image,
                                          local_service, ALLOW_JOB)
    assert len(asked(session, local_service)) == 1
    assert SERVED in tool_output(api)
    assert not blocked(session, reply["jobId"])
    assert not any(str(local_service) in h for h in allowed_hosts(workspace))


async def test_always_is_remembered_for_the_workspace_and_not_asked_again(
        scripted: Any, lsp: Start, workspace: Path, sandbox_image: str,
        local_service: int) -> None:
    session, api, _ = await fetch_job(lsp, scripted, workspace, sandbox_image, local_service,
                                      ALWAYS)
    assert len(asked(session, local_service)) == 1 and SERVED in tool_output(api)
    assert f"localhost:{local_service}" in allowed_hosts(workspace)
    again, api, _ = await fetch_job(lsp, scripted, workspace, sandbox_image, local_service,
                                    None)  # no answer would refuse it: it is not asked
    assert not asked(again, local_service)
    assert SERVED in tool_output(api)


async def test_deny_fails_the_connection_and_is_a_blocked_event(
        scripted: Any, lsp: Start, workspace: Path, sandbox_image: str,
        local_service: int) -> None:
    session, api, reply = await fetch_job(lsp, scripted, workspace, sandbox_image,
                                          local_service, DENY)
    assert len(asked(session, local_service)) == 1
    output = tool_output(api)
    assert "exit=0" not in output and "403" in output, output
    (event,) = blocked(session, reply["jobId"])
    assert event["host"] == "localhost" and event["port"] == local_service
    assert event["reason"] == "denied"
    assert not allowed_hosts(workspace)
