"""The outbox poster's choice of the next message: per thread in order, the most urgent thread
first, and a message whose budget lets it go now before one that must wait for its own."""
from __future__ import annotations

from collections import deque
from datetime import UTC, datetime

from bot.poster import Priority, _Channel
from orchestrator.outbox import OutboxItem, OutboxStatus


def item(item_id: int, thread: str, op: str) -> OutboxItem:
    return OutboxItem(id=item_id, channel="C1", thread=thread, key=None, kind="intervention", op=op,
                      priority=Priority.INTERVENTION, parent=None, payload={}, status=OutboxStatus.PENDING,
                      maybe_sent=False, attempts=0, ref=None, error=None, created_at=datetime.now(UTC))


def test_a_question_to_post_does_not_wait_behind_an_edit_waiting_for_chat_update_budget():
    channel = _Channel(rate=1.0, burst=3)
    edit, question = item(1, "task:1", "update"), item(2, "task:2", "post")
    channel.threads = {"task:1": deque([edit]), "task:2": deque([question])}
    assert channel.next_item() is edit                                         # oldest first...
    assert channel.next_item(ready=lambda i: i.op == "post") is question      # ...unless it must wait
    assert channel.next_item(ready=lambda i: False) is edit                   # nothing ready: the oldest


def test_in_one_thread_a_post_passes_edits_waiting_for_budget_but_never_an_earlier_post():
    channel = _Channel(rate=1.0, burst=3)
    closing_edit, next_question, after = item(1, "task:1", "update"), item(2, "task:1", "post"), item(3, "task:1", "post")
    channel.threads = {"task:1": deque([closing_edit, next_question, after])}
    assert channel.next_item(ready=lambda i: True) is closing_edit             # all ready: written order
    assert channel.next_item(ready=lambda i: i.op == "post") is next_question  # the edit waits, the question goes
    channel.pop(next_question)
    assert list(channel.threads["task:1"]) == [closing_edit, after]
    assert channel.next_item(ready=lambda i: i.op == "post") is after          # the posts keep their order
    assert channel.next_item(ready=lambda i: False) is closing_edit            # nothing ready: the oldest
    channel.threads = {"task:1": deque([item(4, "task:1", "update"), item(5, "task:1", "update")])}
    assert channel.next_item(ready=lambda i: i.id == 5).id == 4               # edits never pass each other


async def test_a_question_written_while_an_edit_waits_for_its_budget_is_posted_at_once(tmp_path):
    """The poster waits out chat.update's budget for an edit; a question written meanwhile does
    not wait with it (through the emulator, with a real outbox on a real SQLite file)."""
    import asyncio

    from slack_sdk.web.async_client import AsyncWebClient

    from bot.budget import MethodBudget
    from bot.emulator import SlackEmulator
    from bot.poster import ChannelPoster
    from orchestrator import Outbox
    from orchestrator.store import Store

    store = await Store.open(f"sqlite+aiosqlite:///{tmp_path / 'taskpin.db'}")
    async with SlackEmulator(rate_limits=True) as emu:
        emu.add_channel("C_BOARD", "board")
        slow_edits = MethodBudget(per_minute=1, burst=1, reserve=0)      # the next edit: in a minute
        poster = ChannelPoster(AsyncWebClient(token=emu.bot_token, base_url=emu.api_url), Outbox(store),
                               update_budget=slow_edits)
        try:
            await poster.post("C_BOARD", "task:1", {"text": "first question"}, kind="intervention",
                              priority=Priority.INTERVENTION, key="iv:1")
            await emu.wait_for(lambda: emu.messages("C_BOARD"), timeout=5)
            slow_edits.take()                                                # spent: an edit waits ~60 s
            await poster.update("C_BOARD", "task:1", {"text": "first question: answered"},
                                kind="intervention_closed", priority=Priority.INTERVENTION, parent="iv:1")
            await asyncio.sleep(0.3)                                         # the poster is waiting for it
            await poster.post("C_BOARD", "task:1", {"text": "second question"}, kind="intervention",
                              priority=Priority.INTERVENTION, key="iv:2")
            await emu.wait_for(lambda: len(emu.messages("C_BOARD")) == 2, timeout=10)
            assert [m["text"] for m in emu.messages("C_BOARD")] == ["first question", "second question"]
            assert not emu.edits("C_BOARD", emu.messages("C_BOARD")[0]["ts"])   # the edit still waits
        finally:
            await poster.close()
            await store.close()


async def test_close_stops_a_poster_waiting_for_budget_whenever_a_new_message_wakes_it(tmp_path):
    """The worker waits out a budget but wakes for a new message; close() cancels it. A wake-up
    landing in the same moment as the cancellation must not swallow it (the worker would then
    wait on forever and close() never return): tried at every few event-loop steps apart."""
    import asyncio

    from slack_sdk.web.async_client import AsyncWebClient

    from bot.budget import MethodBudget
    from bot.emulator import SlackEmulator
    from bot.poster import ChannelPoster
    from orchestrator import Outbox
    from orchestrator.store import Store

    store = await Store.open(f"sqlite+aiosqlite:///{tmp_path / 'taskpin.db'}")
    async with SlackEmulator(rate_limits=True) as emu:
        emu.add_channel("C_BOARD", "board")
        client = AsyncWebClient(token=emu.bot_token, base_url=emu.api_url)
        try:
            for steps_apart in range(8):
                budget = MethodBudget(per_minute=1, burst=1, reserve=0)
                budget.take()
                poster = ChannelPoster(client, Outbox(store), update_budget=budget)
                await poster.update("C_BOARD", f"t{steps_apart}", {"text": "edit", "ts": "1.000001"},
                                    kind="edit", priority=Priority.MILESTONE)
                await asyncio.sleep(0.05)                       # the worker waits for chat.update's budget
                poster._channel("C_BOARD").wakeup.set()         # as a new message does
                for _ in range(steps_apart):
                    await asyncio.sleep(0)
                async with asyncio.timeout(5):
                    await poster.close()
        finally:
            await store.close()


async def test_an_owners_dm_edit_takes_the_next_chat_update_before_output_edits_queued_in_the_board_channel(tmp_path):
    """chat.update is one budget for every channel: when it is spent, the edit telling an owner
    how many questions wait goes before output edits that were waiting longer in another channel
    (through the emulator, with a real outbox on a real SQLite file)."""
    import asyncio

    from slack_sdk.web.async_client import AsyncWebClient

    from bot.budget import MethodBudget
    from bot.emulator import SlackEmulator
    from bot.poster import ChannelPoster
    from orchestrator import Outbox
    from orchestrator.store import Store

    store = await Store.open(f"sqlite+aiosqlite:///{tmp_path / 'taskpin.db'}")
    async with SlackEmulator(rate_limits=True) as emu:
        emu.add_channel("C_BOARD", "board")
        emu.add_channel("D_OWNER", "dm")
        edits = MethodBudget(per_minute=120, burst=1, reserve=0)        # an edit every half second
        poster = ChannelPoster(AsyncWebClient(token=emu.bot_token, base_url=emu.api_url), Outbox(store),
                               update_budget=edits)
        try:
            for n in range(3):
                await poster.post("C_BOARD", f"task:{n}", {"text": f"output {n}"}, kind="output",
                                  priority=Priority.OUTPUT, key=f"out:{n}")
            await poster.post("D_OWNER", "dm:U1", {"text": "1 question waits"}, kind="owner_dm",
                              priority=Priority.INTERVENTION, key="dm")
            await emu.wait_for(lambda: len(emu.messages("C_BOARD")) == 3 and emu.messages("D_OWNER"), timeout=10)
            edits.take()                                                    # spent: the next edit in 0.5 s
            for n in range(3):
                await poster.update("C_BOARD", f"task:{n}", {"text": f"output {n}, more"}, kind="output_edit",
                                    priority=Priority.OUTPUT, parent=f"out:{n}")
            await asyncio.sleep(0.1)                                        # they wait for the budget
            await poster.update("D_OWNER", "dm:U1", {"text": "4 questions wait"}, kind="owner_dm_edit",
                                priority=Priority.INTERVENTION, parent="dm")
            await emu.wait_for(lambda: poster.pending == 0, timeout=10)
            order = [c.params.get("channel") for c in emu.calls if c.method == "chat.update" and c.ok]
            assert order == ["D_OWNER", "C_BOARD", "C_BOARD", "C_BOARD"], order
        finally:
            await poster.close()
            await store.close()
