"""Slack delivers some things twice (Socket Mode redelivery, Events API retries): one effect each,
also when taskpin restarted in between (the ids are kept in the store, table `deliveries`)."""
from __future__ import annotations

import asyncio
from datetime import timedelta

import pytest

from bot.ids import ActionId
from orchestrator import TaskState
from orchestrator.store import Store
from orchestrator.store.tables import utcnow
from tests.core.helpers import scripted, wait_state
from tests.e2e.conftest import BOARD, OWNER, emu, taskpin  # noqa: F401  (fixtures)
from tests.e2e.scenario import click_card, create_by_slash, thread_of, wait_board

S = TaskState


async def test_claiming_a_delivery_is_won_once_even_concurrently(db_url):
    store = await Store.open(db_url)
    try:
        results = await asyncio.gather(*(store.claim_delivery("event:Ev1") for _ in range(12)))
        assert sorted(results) == [False] * 11 + [True]
        assert await store.claim_delivery("trigger:1.2.3") is True
        assert await store.prune_deliveries(utcnow() - timedelta(hours=1)) == 0   # young ids stay
        assert await store.claim_delivery("event:Ev1") is False
        assert await store.prune_deliveries(utcnow() + timedelta(seconds=1)) == 2
        assert await store.claim_delivery("event:Ev1") is True    # forgotten after pruning
    finally:
        await store.close()


@pytest.mark.parametrize("socket", [True, False], ids=["socket", "http"])
async def test_a_redelivered_task_command_creates_one_task(emu, taskpin, socket):
    await taskpin.start(socket=socket)
    first = await emu.slash_command(OWNER, "/task", "Write the changelog")
    await emu.wait_for(lambda: emu.ephemerals(user=OWNER), timeout=5)
    again = await emu.redeliver(first)
    assert again.acked and again.latency < 3
    if socket:
        assert again.delivery.id == first.delivery.id   # a Socket Mode redelivery keeps its envelope id
    await asyncio.sleep(0.3)   # a second task would be created by now (the first took milliseconds)
    assert [t.title for t in await taskpin.core.list_tasks()] == ["Write the changelog"]
    assert len(emu.ephemerals(user=OWNER)) == 1


async def test_a_redelivery_after_a_restart_still_has_no_effect(emu, taskpin):
    await taskpin.start()
    first = await emu.slash_command(OWNER, "/task", "Write the changelog")
    await emu.wait_for(lambda: emu.ephemerals(user=OWNER), timeout=5)
    await taskpin.stop()
    await taskpin.start()          # a new process would see the same: the ids are in the store
    again = await emu.redeliver(first)
    assert again.acked
    await asyncio.sleep(0.3)
    assert len(await taskpin.core.list_tasks()) == 1
    assert taskpin.runtime.gate.duplicates == 1


@pytest.mark.parametrize("socket", [True, False], ids=["socket", "http"])
async def test_a_redelivered_click_has_one_effect(emu, taskpin, socket):
    await taskpin.start({"bot": scripted([{"finish": "done"}])}, socket=socket)
    task_id = await create_by_slash(emu, taskpin.core, "A task")
    click = await click_card(emu, OWNER, ActionId.DISPATCH, task_id)
    await wait_state(taskpin.core, task_id, S.AWAITING_REVIEW)
    await taskpin.core.reject(task_id, actor=OWNER)
    await taskpin.core.retry(task_id, actor=OWNER)        # a second Dispatch would act now
    told = len(emu.ephemerals(user=OWNER))
    again = await emu.redeliver(click)
    assert again.acked and again.latency < 3
    await asyncio.sleep(0.3)
    assert (await taskpin.core.get_task(task_id)).state is S.BACKLOG
    dispatches = [h for h in await taskpin.core.history(task_id) if h.reason == "dispatched"]
    assert len(dispatches) == 1
    assert len(emu.ephemerals(user=OWNER)) == told


async def test_a_retried_thread_reply_is_answered_once_across_a_restart(emu, taskpin):
    """HTTP mode: Slack retries an event (X-Slack-Retry-Num) it thinks failed, even minutes later."""
    await taskpin.start({"bot": scripted([{"finish": "done"}])}, socket=False)
    task_id = await create_by_slash(emu, taskpin.core, "A task")
    await click_card(emu, OWNER, ActionId.DISPATCH, task_id)
    await wait_state(taskpin.core, task_id, S.AWAITING_REVIEW)
    await wait_board(emu, lambda t: "review" in t.lower(), what="card in review")
    ts, _ = thread_of(emu, task_id)
    reply = await emu.user_message(OWNER, BOARD, "looks good?", thread_ts=ts)
    hint = await emu.wait_for(lambda: [e for e in emu.ephemerals(user=OWNER) if "awaiting review" in
                                       emu.text_of(e)], timeout=5)
    assert len(hint) == 1
    await taskpin.stop()
    await taskpin.start({"bot": scripted([{"finish": "done"}])}, socket=False)
    for _ in range(2):
        again = await emu.redeliver(reply)
        assert again.acked and again.http_status == 200
    await asyncio.sleep(0.3)
    assert len([e for e in emu.ephemerals(user=OWNER) if "awaiting review" in emu.text_of(e)]) == 1
