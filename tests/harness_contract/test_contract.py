"""The same behaviours against every adapter (kits.py): start, intervention round trip, deny
with text, follow-up, interrupt, cancel leaves no process, resume, usage deltas, and the
final event exactly once."""
from __future__ import annotations

import asyncio

import pytest

from orchestrator.harness import (
    Failed,
    Finished,
    HarnessError,
    InterventionRequest,
    SessionIdAssigned,
    Usage,
)
from orchestrator.models import InterventionKind
from tests.core.helpers import wait_until
from tests.harness_helpers import alive, collect, of

from .kits import HEARD

pytestmark = pytest.mark.timeout(120)



@pytest.fixture
async def sessions():
    started: list = []
    yield started
    for session in started:
        await session.stop()


async def start(kit, sessions, scenario: str, **kw):
    session = await kit.harness().start(kit.spec(scenario, **kw))
    sessions.append(session)
    return session


def final_events(events: list) -> list:
    return [e for e in events if isinstance(e, (Finished, Failed))]


async def test_start_announces_the_session_and_finishes_exactly_once(kit, sessions):
    session = await start(kit, sessions, "finish")
    events = await collect(session, timeout=60)
    assert isinstance(events[-1], Finished) and final_events(events) == [events[-1]]
    assert of(events, SessionIdAssigned)
    await session.stop()
    assert await collect(session, timeout=5) == []          # the final event is not repeated
    assert session.pid is None or not alive(session.pid)


async def test_usage_is_reported_as_deltas(kit, sessions):
    session = await start(kit, sessions, "finish")
    usage = of(await collect(session, timeout=60), Usage)
    assert usage and all(u.input_tokens >= 0 and u.output_tokens >= 0 and u.cost_usd >= 0 for u in usage)
    total = (sum(u.input_tokens for u in usage), sum(u.output_tokens for u in usage), sum(u.cost_usd for u in usage))
    assert total[:2] == kit.expected_usage[:2] and total[2] == pytest.approx(kit.expected_usage[2])


async def test_an_intervention_round_trip(kit, sessions):
    session = await start(kit, sessions, "ask")
    asked: list[InterventionRequest] = []

    def approve(request):
        asked.append(request)
        assert not kit.wrote_file()
        return kit.allow(request)

    events = await collect(session, approve, timeout=60)
    [request] = asked
    assert request.kind is InterventionKind.PERMISSION and request.request_id
    assert {o.kind for o in request.options} >= {"allow", "deny"}
    assert isinstance(events[-1], Finished)
    assert kit.wrote_file()


async def test_a_deny_with_text_reaches_the_agent(kit, sessions):
    session = await start(kit, sessions, "deny")
    events = await collect(session, lambda r: kit.deny(r, f"no, name it greeting.txt {HEARD}"), timeout=60)
    assert isinstance(events[-1], Finished) and len(final_events(events)) == 1
    assert not kit.wrote_file()
    assert kit.heard(HEARD)


async def test_an_answer_to_a_request_that_is_gone_is_a_harness_error(kit, sessions):
    session = await start(kit, sessions, "ask")
    asked = []
    events = await collect(session, lambda r: asked.append(r) or kit.allow(r), timeout=60)
    assert isinstance(events[-1], Finished)
    with pytest.raises(HarnessError):
        await session.answer(asked[0].request_id, kit.allow(asked[0]), asked[0])


async def test_a_follow_up_reaches_the_running_agent(kit, sessions):
    session = await start(kit, sessions, "follow_up")
    assert session.supports_follow_up

    async def follow_up_then_approve(request):
        await session.send(f"also update the changelog {HEARD}")
        return kit.allow(request)

    events = await collect(session, follow_up_then_approve, timeout=60)
    assert isinstance(events[-1], Finished) and len(final_events(events)) == 1
    await wait_until(lambda: kit.heard(HEARD), 10, "the follow-up to reach the agent")


async def _running_long(kit, sessions):
    session = await start(kit, sessions, "long")
    events: list = []

    async def consume():
        async for event in session.events():
            events.append(event)
            if isinstance(event, InterventionRequest):
                await session.answer(event.request_id, kit.allow(event), event)

    consumer = asyncio.create_task(consume())
    await wait_until(kit.long_running, 30, "the long-running work to start")
    return session, consumer, events


async def test_stop_leaves_no_process_and_ends_the_events_once(kit, sessions):
    session, consumer, events = await _running_long(kit, sessions)
    pid = session.pid
    await session.stop()
    await asyncio.wait_for(consumer, 15)
    assert isinstance(events[-1], Failed) and not events[-1].retryable and len(final_events(events)) == 1
    assert not kit.long_running()
    assert pid is None or not alive(pid)
    await session.stop()   # twice is fine


async def test_interrupt_ends_the_turn_not_retryable(kit, sessions):
    session, consumer, events = await _running_long(kit, sessions)
    await session.interrupt()
    await asyncio.wait_for(consumer, 20)
    assert isinstance(events[-1], Failed) and not events[-1].retryable and "interrupted" in events[-1].error
    assert len(final_events(events)) == 1
    await session.stop()
    await wait_until(lambda: not kit.long_running(), 10, "no process left after stop")


async def test_resume_continues_the_recorded_session(kit, sessions):
    harness = kit.harness()
    assert harness.supports_resume
    first = await start(kit, sessions, "finish")
    [sid] = of(await collect(first, timeout=60), SessionIdAssigned)
    await first.stop()
    resumed = await harness.resume(kit.spec("resume", prompt="continue CONTRACT-RESUME", resume_id=sid.session_id))
    sessions.append(resumed)
    events = await collect(resumed, timeout=60)
    assert isinstance(events[-1], Finished)
    assert kit.resumed(sid.session_id)
    if kit.expected_resume_usage is not None:
        usage = of(events, Usage)
        assert sum(u.cost_usd for u in usage) == pytest.approx(kit.expected_resume_usage[2])
