"""Cleanup never swallows the caller's cancellation: a stop() or helper that is cancelled
raises CancelledError, and the next stop() finishes the job."""
from __future__ import annotations

import asyncio
import json
import os
import signal
import sys
from pathlib import Path

import pytest

from orchestrator.config import AgentConfig
from orchestrator.harness import Failed, SessionSpec, build_harness
from orchestrator.harness.session import cancel_and_wait, settle, wait_quietly
from tests.core.helpers import wait_until
from tests.harness_helpers import alive, group_members

SCRIPTED = Path(__file__).resolve().parent / "agents" / "scripted_agent.py"
pytestmark = pytest.mark.timeout(60)


def slow_to_cancel(cancelled: asyncio.Event) -> asyncio.Task:
    """A task that, when cancelled, takes a while to clean up (then ends cancelled)."""
    async def body():
        try:
            await asyncio.Event().wait()
        except asyncio.CancelledError:
            cancelled.set()
            await asyncio.sleep(30)
            raise
    return asyncio.ensure_future(body())


@pytest.mark.parametrize("helper", ["settle", "cancel_and_wait", "wait_quietly"])
async def test_a_cancelled_helper_raises_the_callers_cancellation(helper):
    cancelled = asyncio.Event()
    inner = slow_to_cancel(cancelled)
    if helper == "settle":
        outer = asyncio.ensure_future(settle([inner], timeout=0))
    elif helper == "cancel_and_wait":
        outer = asyncio.ensure_future(cancel_and_wait(inner))
    else:
        cancelled.set()
        outer = asyncio.ensure_future(wait_quietly(inner, timeout=30))
    await asyncio.wait_for(cancelled.wait(), 5)
    await asyncio.sleep(0)
    outer.cancel()
    with pytest.raises(asyncio.CancelledError):
        await asyncio.wait_for(outer, 5)
    while not inner.done():          # cancelling it again ends its clean-up
        inner.cancel()
        await asyncio.wait({inner}, timeout=0.1)


async def test_a_cancelled_stop_propagates_and_the_next_stop_finishes(tmp_path):
    harness = build_harness("stubborn", AgentConfig(kind="command", command=[sys.executable, str(SCRIPTED)],
                                                    stop_grace_s=30))
    steps = [{"ignore_sigterm": True}, {"write_pid": "agent.pid"}, {"hang": True}]
    workdir = tmp_path / "wt"
    workdir.mkdir()
    session = await harness.start(SessionSpec(task_id=1, workdir=workdir, prompt="p",
                                              env={"SCRIPTED_AGENT_SCRIPT": json.dumps(steps)}))
    await wait_until(lambda: (workdir / "agent.pid").exists(), 10, "the agent to ignore SIGTERM")
    pid = session.pid
    stopping = asyncio.ensure_future(session.stop())     # waits out the 30 s grace period
    await wait_until(lambda: not stopping.done() and group_members(pid), 5, "stop() to be waiting")
    await asyncio.sleep(0.2)
    stopping.cancel()
    with pytest.raises(asyncio.CancelledError):
        await asyncio.wait_for(stopping, 5)
    assert alive(pid)                                     # the cancelled stop did not finish...
    os.killpg(pid, signal.SIGKILL)                        # (the grace period is over, as it were)
    await asyncio.wait_for(session.stop(), 10)            # ...the next one does
    assert not alive(pid) and not group_members(pid)
    events = [e async for e in session.events()]
    assert isinstance(events[-1], Failed) and not events[-1].retryable
