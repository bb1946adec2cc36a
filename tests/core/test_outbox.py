"""The core's outbox on SQLite and PostgreSQL: recorded once, in order, kept across a restart."""
from __future__ import annotations

import asyncio

from sqlalchemy import event

from orchestrator import OutboxStatus
from orchestrator.outbox import Outbox
from orchestrator.store import Store


async def test_rows_survive_a_restart_in_order_and_keys_are_recorded_once(db_url):
    store = await Store.open(db_url)
    box = Outbox(store)
    root, new = await box.add(channel="C1", thread="task:1", kind="thread_root", key="root:1", payload={"text": "a"})
    assert new
    again, new = await box.add(channel="C1", thread="task:1", kind="thread_root", key="root:1",
                               payload={"text": "other"})
    assert not new and again.id == root.id and again.payload == {"text": "a"}
    reply, _ = await box.add(channel="C1", thread="task:1", kind="milestone", parent="root:1",
                             payload={"text": "b"}, priority=2)
    await box.attempting(root.id)          # then the process dies
    await store.close()

    store = await Store.open(db_url)
    box = Outbox(store)
    pending = await box.pending()
    assert [(p.id, p.kind, p.maybe_sent, p.attempts) for p in pending] == [
        (root.id, "thread_root", True, 1), (reply.id, "milestone", False, 0)]
    await box.sent(root.id, "111.222")
    await box.failed(reply.id, "invalid_blocks", ref="111.333")
    assert (await box.get("root:1")).ref == "111.222" and not await box.pending()
    assert (await box.get_by_id(reply.id)).status is OutboxStatus.FAILED
    assert await box.counts() == {OutboxStatus.SENT: 1, OutboxStatus.FAILED: 1}
    await store.close()


async def test_coalescing_replaces_only_the_last_untried_row_of_the_thread(db_url):
    store = await Store.open(db_url)
    box = Outbox(store)
    try:
        first, _ = await box.add(channel="C1", thread="t", kind="output", payload={"text": "1"}, coalesce=True)
        merged, new = await box.add(channel="C1", thread="t", kind="output", payload={"text": "2"}, coalesce=True)
        assert not new and merged.id == first.id and merged.payload == {"text": "2"}
        await box.add(channel="C1", thread="t", kind="milestone", payload={"text": "m"})
        later, new = await box.add(channel="C1", thread="t", kind="output", payload={"text": "3"}, coalesce=True)
        assert new, "an output summary never jumps ahead of the milestone before it"
        await box.attempting(later.id)
        tried, new = await box.add(channel="C1", thread="t", kind="output", payload={"text": "4"}, coalesce=True)
        assert new and tried.id != later.id, "a row that may be in Slack already is never rewritten"
        assert [p.payload["text"] for p in await box.pending()] == ["2", "m", "3", "4"]
    finally:
        await store.close()


async def test_concurrent_adds_of_one_key_make_one_row(db_url):
    store = await Store.open(db_url)
    box = Outbox(store)
    try:
        results = await asyncio.gather(*(box.add(channel="C1", thread="t", kind="intervention", key="iv:7",
                                                 payload={"n": i}) for i in range(5)))
        assert len({item.id for item, _ in results}) == 1 and sum(new for _, new in results) == 1
        assert len(await box.pending()) == 1
    finally:
        await store.close()


def _statements(store: Store, starting: str) -> list[int]:
    """A counter of the statements sent to the database that start with `starting` and name the outbox."""
    counted = [0]

    @event.listens_for(store.engine.sync_engine, "before_cursor_execute")
    def _count(_conn, _cursor, statement, *_args) -> None:
        text = statement.lstrip().upper()
        counted[0] += text.startswith(starting) and "OUTBOX" in text
    return counted


async def test_adds_made_at_once_read_the_outbox_once_per_batch_and_see_the_rows_before_them(db_url):
    store = await Store.open(db_url)
    box = Outbox(store)
    reads = _statements(store, "SELECT")

    try:
        await box.add(channel="C1", thread="t", kind="output", payload={"text": "0"}, coalesce=True)
        await box.attempting((await box.pending())[0].id)      # tried: never rewritten
        reads[0] = 0
        results = await asyncio.gather(
            *(box.add(channel=f"D{i}", thread=f"dm:{i}", kind="owner_dm", key=f"dm:{i}", payload={"n": i})
              for i in range(40)),
            box.add(channel="D3", thread="dm:3", kind="owner_dm", key="dm:3", payload={"n": "again"}),
            box.add(channel="C1", thread="t", kind="output", payload={"text": "1"}, coalesce=True),
            box.add(channel="C1", thread="t", kind="output", payload={"text": "2"}, coalesce=True),
            box.add(channel="C1", thread="t", kind="milestone", payload={"text": "m"}),
            box.add(channel="C1", thread="t", kind="output", payload={"text": "3"}, coalesce=True))
        assert reads[0] < 10, "a read per batch, not per message"
        dms, again, outputs = results[:40], results[40], results[41:]
        assert all(new for _, new in dms) and len({item.id for item, _ in dms}) == 40
        assert not again[1] and again[0].id == dms[3][0].id and again[0].payload == {"n": 3}
        assert [new for _, new in outputs] == [True, False, True, True]
        pending = [p for p in await box.pending() if p.channel == "C1"]
        assert [p.payload["text"] for p in pending] == ["0", "2", "m", "3"]
    finally:
        await store.close()


async def test_marks_made_at_once_are_one_update_per_kind_of_mark_and_keep_their_order(db_url):
    store = await Store.open(db_url)
    box = Outbox(store)
    updates = _statements(store, "UPDATE OUTBOX")

    try:
        items = [(await box.add(channel=f"D{i}", thread="t", kind="owner_dm", payload={"n": i}))[0] for i in range(30)]
        updates[0] = 0
        await asyncio.gather(*(box.attempting(item.id) for item in items),
                             box.sent(items[0].id, "1.0"), box.attempting(items[1].id))
        assert updates[0] <= 6, "one statement per kind of mark, not per message"
        rows = {p.id: p for p in await box.pending()}
        assert items[0].id not in rows and (await box.get_by_id(items[0].id)).ref == "1.0"   # sent after attempting
        assert rows[items[1].id].attempts == 2 and all(rows[i.id].attempts == 1 for i in items[2:])
        assert all(rows[i.id].maybe_sent for i in items[1:])
    finally:
        await store.close()
