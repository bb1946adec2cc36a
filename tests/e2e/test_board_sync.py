"""The pinned board under load, through the emulator with Slack's real rate limits: bursts
coalesce into about one chat.update per interval, nothing is sent when nothing changed, a 429
is waited out and then the latest state is sent, and nothing is ever lost."""
from __future__ import annotations

import asyncio
import time

from orchestrator import STATE_ORDER

from .conftest import BOARD, OWNER
from .scenario import board_message, board_text, wait_board


def summary_of(emu) -> str:
    """The board's summary line ("*N* tasks: 3 backlog · 2 failed")."""
    block = next(b for b in board_message(emu)["blocks"] if b.get("block_id") == "board_summary")
    return emu.text_of({"blocks": [block]})


def expected_summary(tasks) -> str:
    from bot.blocks.card import STATE_LABEL
    counts = {s: sum(1 for t in tasks if t.state is s) for s in STATE_ORDER}
    parts = [f"{n} {STATE_LABEL[s].lower()}" for s, n in counts.items() if n]
    return f"*{len(tasks)}* tasks: " + " · ".join(parts)


def updates(emu, since: float = 0.0, *, ok: bool | None = True) -> list:
    return [c for c in emu.calls if c.method == "chat.update" and c.time >= since and (ok is None or c.ok == ok)]


async def test_a_burst_of_500_changes_coalesces_into_one_edit_per_interval(emu, taskpin):
    await taskpin.start(slack={"TASKPIN_BOARD_SYNC_INTERVAL_S": 1.0})
    core = taskpin.core
    started = time.monotonic()   # the emulator's clock: which calls came after this point
    changes = 0
    tasks = []
    for i in range(125):                                   # 125 creations
        tasks.append(await core.create_task(prompt=f"task number {i}", owner=OWNER))
        changes += 1
    for task in tasks[:100]:                               # backlog -> failed -> backlog -> failed
        await core.cancel(task.id, actor=OWNER)
        await core.retry(task.id, actor=OWNER)
        await core.cancel(task.id, actor=OWNER)
        changes += 3
    for task in tasks[:75:3] + tasks[1:75:3] + tasks[2:75:3]:   # and back to the backlog, in a mixed order
        await core.retry(task.id, actor=OWNER)
        changes += 1
    assert changes == 500

    final = await core.list_tasks()
    want = expected_summary(final)
    assert want == "*125* tasks: 100 backlog · 25 failed"
    await wait_board(emu, lambda t: summary_of(emu) == want, timeout=5, what=want)
    text = board_text(emu)
    assert "*Backlog* (100)" in text and "25 failed" in text
    sent = updates(emu, started)
    assert 1 <= len(sent) < changes / 10
    gaps = [later.time - earlier.time for earlier, later in zip(sent, sent[1:])]
    assert min(gaps, default=1.0) >= 0.9, gaps   # coalesced: at most one edit per 1 s interval
    assert emu.ratelimited_count() == 0
    assert len(emu.pinned(BOARD)) == 1

    # Nothing changed: a render of the same board sends nothing; the next change is the next edit.
    settled = time.monotonic()
    board = taskpin.runtime.svc.board
    assert [await board.sync_once() for _ in range(3)] == [False, False, False]
    assert updates(emu, settled, ok=None) == []
    await core.create_task(prompt="after the burst", owner=OWNER)
    await wait_board(emu, lambda t: "after the burst" in t, what="the next change")
    assert len(updates(emu, settled, ok=None)) == 1


async def test_a_429_is_waited_out_and_then_the_latest_state_is_sent_once(emu, taskpin):
    await taskpin.start(slack={"TASKPIN_BOARD_SYNC_INTERVAL_S": 0.2})
    core = taskpin.core
    await core.create_task(prompt="first", owner=OWNER)
    await wait_board(emu, lambda t: "first" in t, what="first card")

    emu.force_rate_limit("chat.update", 30, retry_after=2)
    await core.create_task(prompt="second", owner=OWNER)
    refused = await emu.wait_for(lambda: [c for c in emu.calls if c.method == "chat.update" and c.http_status == 429],
                                 timeout=5)
    emu.force_rate_limit("chat.update", 0)                   # one 429 is enough: Slack would accept the retry
    refused_at = refused[0].time
    await core.create_task(prompt="third", owner=OWNER)     # two changes while it waits
    await asyncio.sleep(0.1)
    await core.create_task(prompt="fourth", owner=OWNER)
    await wait_board(emu, lambda t: "fourth" in t, timeout=6, what="the latest card")

    after = updates(emu, refused_at, ok=None)
    accepted = [c for c in after if c.ok]
    assert len(accepted) == 1, [(c.time - refused_at, c.http_status) for c in after]
    assert accepted[0].time - refused_at >= 1.95, "Retry-After was not honoured"
    assert len(after) == 2, "more than one attempt after the 429"    # the refused one and the accepted one
    text = board_text(emu)
    assert all(word in text for word in ("first", "second", "third", "fourth"))
    assert await taskpin.runtime.svc.board.sync_once() is False   # the latest state is shown: nothing to send
    assert len(updates(emu, refused_at)) == 1, "an edit after the latest state was already shown"


async def test_naive_mode_sends_one_edit_per_change(emu, taskpin):
    """The benchmarks' baseline: TASKPIN_BOARD_NAIVE_SYNC=true edits the board on every event."""
    await taskpin.start(slack={"TASKPIN_BOARD_NAIVE_SYNC": True})
    core = taskpin.core
    started = time.monotonic()
    for i in range(10):
        await core.create_task(prompt=f"naive {i}", owner=OWNER)
    await wait_board(emu, lambda t: "naive 9" in t, what="the last card")
    await asyncio.sleep(0.3)
    assert len(updates(emu, started, ok=None)) == 10


async def test_coalesced_mode_sends_far_fewer_edits_for_the_same_changes(emu, taskpin):
    await taskpin.start(slack={"TASKPIN_BOARD_SYNC_INTERVAL_S": 1.0})
    core = taskpin.core
    started = time.monotonic()
    for i in range(10):
        await core.create_task(prompt=f"coalesced {i}", owner=OWNER)
    await wait_board(emu, lambda t: "coalesced 9" in t, what="the last card")
    sent = updates(emu, started, ok=None)   # the first change is shown at once, the rest an interval later
    gaps = [later.time - earlier.time for earlier, later in zip(sent, sent[1:])]
    assert 1 <= len(sent) < 10 and min(gaps, default=1.0) >= 0.9, gaps


async def test_board_and_thread_edits_share_one_chat_update_budget():
    """The board goes first; other chat.update callers wait for what leaves its reserve, the
    most urgent of them first, then the one waiting longest."""
    from bot.budget import MethodBudget
    from bot.poster import Priority

    budget = MethodBudget(per_minute=600, burst=3, reserve=2)   # 10/s to keep the test short
    assert budget.wait_for() == 0
    budget.take()                                                # the board edits: 2 tokens left
    assert budget.wait_for("output edits", Priority.OUTPUT) > 0  # 2 must stay for the board
    assert budget.wait_for() == 0                                # the board can still edit at once
    budget.queue("output edits", Priority.OUTPUT)
    budget.queue("closing edit", Priority.MILESTONE)
    budget.queue("owner's DM", Priority.INTERVENTION)            # came last, goes first
    waits = [budget.wait_for(c, p) for c, p in (("owner's DM", Priority.INTERVENTION),
                                                  ("closing edit", Priority.MILESTONE),
                                                  ("output edits", Priority.OUTPUT))]
    assert 0 < waits[0] < waits[1] < waits[2], waits
    budget.queue("later closing edit", Priority.MILESTONE)
    assert budget.wait_for("later closing edit", Priority.MILESTONE) > waits[1]   # same rank: the older first
    await asyncio.sleep(waits[0] + 0.01)
    assert budget.wait_for("owner's DM", Priority.INTERVENTION) == 0
    budget.take("owner's DM")                                    # out of the line
    assert 0 < budget.wait_for("closing edit", Priority.MILESTONE) <= waits[0] + 0.01
    budget.pause(1.0)                                            # a 429 with Retry-After 1
    assert budget.wait_for() >= 1.0
