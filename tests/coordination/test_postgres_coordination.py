"""The PostgreSQL coordinator against a real database, with two coordinators standing for two
processes (each its own engine and connections)."""
from __future__ import annotations

import asyncio
import inspect

import pytest
from sqlalchemy import text

from orchestrator.coordination import BOARD_WRITER, TASK_LEASE, Leadership, LeaseLost, current_fence
from orchestrator.coordination.postgres import PostgresCoordinator
from orchestrator.states import TaskState
from orchestrator.store import Store
from orchestrator.store.tables import utcnow


async def wait_until(predicate, timeout: float = 15.0, interval: float = 0.05):
    """The first truthy value of `predicate()` (awaited when it returns an awaitable)."""
    async with asyncio.timeout(timeout):
        while True:
            result = predicate()
            if inspect.isawaitable(result):
                result = await result
            if result:
                return result
            await asyncio.sleep(interval)


@pytest.fixture
async def pair(pg_url):
    """Two coordinators (two 'processes') on one database."""
    stores = [await Store.open(pg_url), await Store.open(pg_url)]
    coords = [PostgresCoordinator(name, store, pg_url, poll_s=0.3) for name, store in zip("AB", stores)]
    for coord in coords:
        await coord.start()
    yield coords
    for coord, store in zip(coords, stores):
        await coord.close()
        await store.close()


async def queued_task(store: Store, title: str) -> int:
    task = await store.create_task(title=title, prompt="p", owner="U1", repo="app", agent="bot",
                                   base_branch="main", branch_for=lambda i: f"taskpin/{i}")
    await store.transition(task.id, TaskState.BACKLOG, TaskState.QUEUED, actor="U1", reason="dispatched",
                           queued_at=utcnow())
    return task.id


async def test_a_lease_is_taken_over_only_after_it_expires_and_the_token_grows(pair):
    a, b = pair
    first = await a.acquire("job", ttl_s=0.6)
    assert first is not None and first.holder == "A"
    assert await b.acquire("job", ttl_s=5) is None           # held: nobody else gets it
    assert await a.renew(first, ttl_s=0.6)
    second = await wait_until(lambda: b.acquire("job", ttl_s=5), timeout=10)
    assert second.holder == "B" and second.token == first.token + 1
    assert not await a.renew(first, ttl_s=5), "the old holder learns it lost the lease"
    assert (await a.holder("job")).holder == "B"
    await b.release(second)
    third = await a.acquire("job", ttl_s=5)                  # released: free at once
    assert third.token == second.token + 1


async def test_a_write_fenced_by_a_lost_lease_fails_and_changes_nothing(pair):
    a, b = pair
    store = a.store
    task_id = await queued_task(store, "fenced")
    claim = await a.claim_next(ttl_s=0.5)
    assert claim.task_id == task_id and claim.lease.key == f"{TASK_LEASE}{task_id}"

    async def write_as_a(title: str):
        current_fence.set(a.fence(claim.lease))   # inside this task only, as a runner does
        await store.update_task(task_id, title=title)

    await asyncio.create_task(write_as_a("written while holding"))
    assert (await store.get_task(task_id)).title == "written while holding"
    taken = await wait_until(lambda: b.acquire(claim.lease.key, ttl_s=30), timeout=10)
    assert taken.token == claim.lease.token + 1
    with pytest.raises(LeaseLost):
        await asyncio.create_task(write_as_a("written after the takeover"))
    assert (await store.get_task(task_id)).title == "written while holding"
    await store.update_task(task_id, title="unfenced writes still work")   # outside a runner
    assert (await store.get_task(task_id)).title == "unfenced writes still work"


async def test_two_workers_claiming_at_once_take_each_task_once_in_fifo_order(pair):
    a, b = pair
    ids = [await queued_task(a.store, f"t{i}") for i in range(12)]
    claims: list[tuple[str, int]] = []
    everyone_has_one = asyncio.Barrier(4)     # then all four race for the rest

    async def drain(coord) -> list[int]:
        mine = []
        while (claim := await coord.claim_next(ttl_s=30)) is not None:
            claims.append((coord.name, claim.task_id))
            mine.append(claim.task_id)
            if len(mine) == 1:
                await everyone_has_one.wait()
        return mine

    loops = await asyncio.gather(drain(a), drain(b), drain(a), drain(b))
    assert sorted(task_id for _, task_id in claims) == ids      # every task once, none twice
    assert {name for name, _ in claims} == {"A", "B"}
    assert all(mine == sorted(mine) for mine in loops)          # each claim took the oldest left
    rows = {t.id: t for t in await a.store.list_tasks()}
    assert all(rows[task_id].worker == name and rows[task_id].state is TaskState.IN_PROGRESS
               for name, task_id in claims)
    assert not await a.store.queued_task_ids()
    [audit] = [t for t in await a.store.transitions(ids[0]) if t.to_state is TaskState.IN_PROGRESS]
    assert audit.from_state is TaskState.QUEUED


async def test_journal_entries_reach_the_other_process_in_order(pair):
    a, b = pair
    got: list[tuple[str, int]] = []

    async def on_entry(entry):
        got.append((entry.origin, entry.data["n"]))

    b.subscribe(on_entry, {"test"})
    for n in range(20):
        a.post_nowait("test", {"n": n})
    await a.post("test", {"n": 20})
    await wait_until(lambda: len(got) == 21)
    assert got == [("A", n) for n in range(21)]
    assert b.notifications >= 1


async def test_entries_written_while_the_listen_connection_was_down_arrive_after_it_reconnects(pair):
    a, b = pair
    got: list[int] = []

    async def on_entry(entry):
        got.append(entry.data["n"])

    b.subscribe(on_entry, {"test"})
    connects = b.listener.connects
    await b.listener.drop_connection()
    await a.post("test", {"n": 1})
    await a.post("test", {"n": 2})
    await wait_until(lambda: b.listener.connects > connects)
    await wait_until(lambda: got == [1, 2])


async def test_an_entry_whose_notification_was_lost_is_read_by_the_slow_poll(pair):
    a, b = pair
    got: list[int] = []

    async def on_entry(entry):
        got.append(entry.data["n"])

    b.subscribe(on_entry, {"test"})
    async with a.engine.begin() as conn:    # a row without its NOTIFY
        await conn.execute(text("INSERT INTO journal (origin, kind, data, created_at) "
                                "VALUES ('A', 'test', '{\"n\": 7}', now())"))
    await wait_until(lambda: got == [7])


async def test_the_board_writer_role_moves_to_the_waiting_process_when_its_holder_stops(pair):
    a, b = pair
    events: list[str] = []

    def role(name):
        async def gain(lease):
            events.append(f"{name} gains {lease.token}")

        async def loss():
            events.append(f"{name} loses")
        return Leadership({"A": a, "B": b}[name], BOARD_WRITER, on_gain=gain, on_loss=loss, ttl_s=1.5,
                          interval_s=0.3)

    first, second = role("A"), role("B")
    await first.start()
    await second.start()
    assert first.holding and not second.holding
    first._task.cancel()                      # A stops renewing, as a killed process would
    await wait_until(lambda: second.holding, timeout=10)
    assert events[0] == "A gains 1" and events[-1] == "B gains 2"
    await second.close()
    assert not second.holding


async def test_a_call_runs_in_the_target_process_and_its_refusal_comes_back_as_the_same_error(pair):
    from orchestrator.coordination.calls import Calls, TargetGone
    from orchestrator.errors import NotAllowed

    a, b = pair
    calls_a, calls_b = Calls(a, timeout_s=2), Calls(b)

    async def answer(args):
        if not args["text"]:
            raise NotAllowed("only the task's owner or an approver can answer for #1")
        return {"heard": args["text"], "by": b.name}

    calls_b.handle("answer", answer)
    assert await calls_a.call("B", "answer", {"text": "yes"}) == {"heard": "yes", "by": "B"}
    with pytest.raises(NotAllowed) as refused:
        await calls_a.call("B", "answer", {"text": ""})
    assert str(refused.value) == "only the task's owner or an approver can answer for #1"
    with pytest.raises(TargetGone, match="taskpin process C does not answer"):
        await calls_a.call("C", "answer", {"text": "anyone?"})


async def test_the_heartbeat_reports_a_lease_taken_over_and_the_reaper_takes_expired_ones(pair):
    from orchestrator.coordination.duties import TaskLeases

    a, b = pair
    lost, taken = [], []

    async def on_lost(lease):
        lost.append(lease)

    async def on_expired(lease, stale):
        taken.append((lease, stale))

    lease = await a.acquire(f"{TASK_LEASE}1", ttl_s=0.5)
    mine = TaskLeases(a, on_lost=on_lost, ttl_s=0.5)
    mine.hold(lease)
    await mine.beat()
    assert not lost
    survivor = TaskLeases(b, on_lost=on_lost, on_expired=on_expired, ttl_s=30)
    async def reaped():
        await survivor.reap()
        return taken

    await wait_until(reaped, timeout=10)   # once A stops beating, B takes it over
    [(new, stale)] = taken
    assert (stale.holder, new.holder, new.token) == ("A", "B", lease.token + 1)
    await mine.beat()
    assert lost == [lease] and not mine.held
