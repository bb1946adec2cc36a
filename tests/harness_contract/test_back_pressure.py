"""Back-pressure, against every adapter (kits.py): an agent that floods output while nobody
reads the session's events is held back (the adapter stops reading it, its pipe fills, its
writes block) instead of the events piling up in memory; once they are read, every one
arrives, in order, and the session finishes."""
from __future__ import annotations

import asyncio
import re

import pytest

from orchestrator.harness import Failed, Finished, OutputText, ToolActivity
from orchestrator.harness.session import QUEUED_LIMIT
from tests.core.helpers import wait_until
from tests.harness_helpers import alive, collect

from .kits import FLOOD

pytestmark = pytest.mark.timeout(180)

# What one read past room() may still bring: the events of one line or message (and, for
# ACP, of the line or two the connection has taken but not yet dispatched).
MARGIN = 10
HELD_S = 1.5             # how long nobody reads, once the queue is full


def flood_numbers(events: list) -> list[int]:
    numbers: list[int] = []
    for event in events:
        text = event.text if isinstance(event, OutputText) else event.detail if isinstance(event, ToolActivity) else ""
        numbers.extend(int(n) for n in re.findall(r"flood (\d+)", text))
    return numbers


async def hold_back(session) -> int:
    """Read nothing until the queue is full, and for HELD_S more: the most events queued."""
    await wait_until(lambda: session.out.queued >= QUEUED_LIMIT, 90, "the queue to fill")
    peak = 0
    loop = asyncio.get_running_loop()
    deadline = loop.time() + HELD_S
    while loop.time() < deadline:
        peak = max(peak, session.out.queued)
        await asyncio.sleep(0.02)
    return max(peak, session.out.queued)


async def test_a_flooding_agent_waits_for_the_reader_and_every_event_arrives_in_order(kit):
    session = await kit.harness().start(kit.spec("flood"))
    try:
        peak = await hold_back(session)
        assert QUEUED_LIMIT <= peak <= QUEUED_LIMIT + MARGIN
        assert not session.out.ended          # the agent is held back, not done
        events = await collect(session, timeout=120)
        assert isinstance(events[-1], Finished)
        assert flood_numbers(events) == list(range(FLOOD))
    finally:
        await session.stop()


async def test_stop_ends_a_session_held_back_by_a_full_queue(kit):
    session = await kit.harness().start(kit.spec("flood"))
    try:
        await hold_back(session)
        pid = session.pid
        await asyncio.wait_for(session.stop(), 30)
        events = await collect(session, timeout=30)     # the backlog, then one final event
        # Failed("stopped by taskpin"), or Finished if the agent, let go, got to say it was done
        assert isinstance(events[-1], (Finished, Failed))
        assert [e for e in events if isinstance(e, (Finished, Failed))] == [events[-1]]
        assert pid is None or not alive(pid)
    finally:
        await session.stop()
