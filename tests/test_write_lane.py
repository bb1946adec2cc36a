"""SQLite's writes take turns in the process, urgent ones first, and a cancelled writer never
wedges the lane; on a real SQLite file, many concurrent writers all land without a busy error."""
from __future__ import annotations

import asyncio

from orchestrator.store import Store
from orchestrator.store.write_lane import WriteLane


async def test_urgent_writes_go_before_the_background_ones_waiting_already():
    lane, order = WriteLane(), []
    holding = asyncio.Event()

    async def write(name: str, urgent: bool = False, hold: asyncio.Event | None = None):
        async with lane.turn(urgent=urgent):
            order.append(name)
            if hold is not None:
                holding.set()
                await hold.wait()

    release = asyncio.Event()
    first = asyncio.create_task(write("first", hold=release))
    await holding.wait()
    background = [asyncio.create_task(write(f"log{i}")) for i in range(3)]
    await asyncio.sleep(0)
    claim = asyncio.create_task(write("delivery claim", urgent=True))
    await asyncio.sleep(0)
    assert lane.waiting == 4
    release.set()
    await asyncio.gather(first, claim, *background)
    assert order == ["first", "delivery claim", "log0", "log1", "log2"]


async def test_a_cancelled_writer_never_wedges_the_lane():
    lane = WriteLane()
    release = asyncio.Event()

    async def hold():
        async with lane.turn():
            await release.wait()

    holder = asyncio.create_task(hold())
    await asyncio.sleep(0)
    gone = asyncio.create_task(lane.turn().__aenter__())   # waits, then is cancelled while waiting
    await asyncio.sleep(0)
    gone.cancel()
    release.set()
    await holder
    async with asyncio.timeout(2):
        async with lane.turn():
            pass
    # handed the turn and cancelled in the same moment: it passes the turn on
    release.clear()
    holder = asyncio.create_task(hold())
    await asyncio.sleep(0)
    waiter = asyncio.create_task(lane.turn().__aenter__())
    await asyncio.sleep(0)
    release.set()
    await holder                       # the turn is handed to `waiter`...
    waiter.cancel()                    # ...which is cancelled before it runs
    await asyncio.gather(waiter, return_exceptions=True)
    async with asyncio.timeout(2):
        async with lane.turn():
            pass


async def test_many_concurrent_writers_on_a_sqlite_file_all_land(sqlite_url):
    store = await Store.open(sqlite_url)
    try:
        keys = [f"delivery:{i}" for i in range(200)]
        claimed = await asyncio.gather(*(store.claim_delivery(k) for k in keys),
                                       *(store.kv_set(f"k{i}", i) for i in range(200)),
                                       *(store.claim_delivery(k) for k in keys[:50]))
        assert claimed[:200] == [True] * 200 and claimed[400:] == [False] * 50
        assert [await store.kv_get(f"k{i}") for i in (0, 199)] == [0, 199]
    finally:
        await store.close()
