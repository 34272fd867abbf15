"""A language server's containers are gone before its process ends (real server over stdio,
real engine and CLI, scripted model with a slow turn so the job is mid-run at the exit)."""

from __future__ import annotations

import uuid
from pathlib import Path
from typing import Any

import pytest

from channelcoder.testing.fake_anthropic import FakeAnthropic, Reply, Scenario, ToolCall, Turn
from tests.lsp.rawclient import RawClient
from tests.plugins.docker import job_ran_its_tool, run_containers, wait_until
from tests.warm.helpers import ready_standby

pytestmark = [pytest.mark.docker, pytest.mark.usefixtures("claude_bin")]

ATTEMPTS = 3  # the leak was a race between `exit` and the job's clean-up: try it more than once
GUARD = 60.0


@pytest.mark.timeout(600)
def test_exit_mid_job_leaves_no_container_once_the_process_has_ended(
        git_repo: Path, sandbox_image: str, docker_client: Any) -> None:
    before = run_containers(docker_client)
    settings = {"docker": {"image": sandbox_image}, "streamEvents": True}
    with FakeAnthropic(Scenario([ToolCall("Bash", {"command": "echo started"}),
                                 Turn([Reply("late")], first_delay=120)])) as api:
        for attempt in range(ATTEMPTS):
            raw = RawClient(env=api.env())
            try:
                raw.initialize(git_repo, settings)
                job_id = f"exit-{attempt}-{uuid.uuid4().hex[:6]}"
                raw.send({"jsonrpc": "2.0", "id": f"run-{attempt}",
                          "method": "workspace/executeCommand",
                          "params": {"command": "channelcoder.run",
                                     "arguments": [{"prompt": "wait", "jobId": job_id}]}})
                wait_until(lambda r=raw, j=job_id: job_ran_its_tool(r.notifications, j),
                           "the job's tool call")
                if attempt == 0:  # once with the standby up, then while the next is prepared
                    wait_until(lambda: ready_standby(docker_client) is not None, "a standby")
                assert run_containers(docker_client) - before, "the job has no container"
                # A plain client: shutdown and exit back to back, then its end of the pipe closes.
                raw.send({"jsonrpc": "2.0", "id": f"shutdown-{attempt}", "method": "shutdown"})
                raw.notify("exit")
                assert raw.process.stdin is not None
                raw.process.stdin.close()
                raw.wait_exit(GUARD)
                left = run_containers(docker_client) - before
                assert not left, (f"attempt {attempt}: {len(left)} container(s) outlived the "
                                  f"server:\n{raw.stderr.decode(errors='replace')[-3000:]}")
            finally:
                if raw.process.poll() is None:
                    raw.process.kill()
                    raw.process.wait()
                raw.close()
                for cid in run_containers(docker_client) - before:
                    docker_client.api.remove_container(cid, force=True)
