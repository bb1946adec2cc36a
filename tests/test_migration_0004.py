"""Migration 0004 on a database that lived under 0003: dispatches waiting for a slot
(in_progress with queued_at) become state queued, in the same FIFO order; running tasks keep
running and get a place ahead of them should they be queued again after a restart."""
from __future__ import annotations

from datetime import UTC, datetime, timedelta

from sqlalchemy import insert, select

from orchestrator.states import TaskState
from orchestrator.store import Store, make_engine, migrate
from orchestrator.store.tables import TaskRow, TransitionRow

S = TaskState
T0 = datetime(2026, 3, 1, 9, 0, tzinfo=UTC)
OLD_HEAD_OF_QUEUE = datetime(1970, 1, 1, tzinfo=UTC)   # what 0003-era recovery wrote


def _task(task_id: int, state: str, *, queued_at=None, started_at=None) -> dict:
    return dict(id=task_id, title=f"t{task_id}", prompt="p", owner="U1", repo="app", agent="bot",
                base_branch="main", branch=f"taskpin/{task_id}", state=state, version=3, created_at=T0,
                updated_at=T0, state_changed_at=T0, started_at=started_at, queued_at=queued_at, retryable=True,
                input_tokens=0, output_tokens=0, cost_usd=0.0)


async def test_0004_makes_waiting_dispatches_queued_in_fifo_order(db_url):
    engine = make_engine(db_url)
    try:
        await migrate.upgrade(engine, "0003")
        async with engine.begin() as conn:
            await conn.execute(insert(TaskRow.__table__), [
                _task(1, "backlog"),
                _task(2, "in_progress", queued_at=T0 + timedelta(minutes=2)),     # waiting, second
                _task(3, "in_progress", queued_at=T0 + timedelta(minutes=1)),     # waiting, first
                _task(4, "in_progress", started_at=T0 + timedelta(minutes=5)),    # running
                _task(5, "blocked", started_at=T0 + timedelta(minutes=3)),        # running, asking
                _task(6, "awaiting_review", started_at=T0),
            ])
            await conn.execute(insert(TransitionRow.__table__), [
                dict(task_id=i, from_state="backlog", to_state="in_progress", actor="U1", reason="dispatched", at=T0)
                for i in (2, 3, 4)])
        await migrate.upgrade(engine, "0004")
        assert await migrate.current_revision(engine) == "0004"
    finally:
        await engine.dispose()

    store = await Store.open(db_url)
    try:
        tasks = {t.id: t for t in await store.list_tasks()}
        assert {i: t.state for i, t in tasks.items()} == {
            1: S.BACKLOG, 2: S.QUEUED, 3: S.QUEUED, 4: S.IN_PROGRESS, 5: S.BLOCKED, 6: S.AWAITING_REVIEW}
        assert await store.queued_task_ids() == [3, 2]
        assert [tasks[3].queue_position, tasks[2].queue_position] == [1, 2]
        assert tasks[4].queue_position is None and tasks[2].version == 4
        history = await store.transitions(2)
        assert [(h.from_state, h.to_state) for h in history] == [(S.BACKLOG, S.IN_PROGRESS), (S.IN_PROGRESS, S.QUEUED)]
        async with store.session() as s:
            queued_at = dict((await s.execute(select(TaskRow.id, TaskRow.queued_at))).all())
        first_waiting = queued_at[3]
        assert queued_at[4] is not None and queued_at[5] is not None
        assert _utc(queued_at[4]) <= _utc(first_waiting) and _utc(queued_at[5]) <= _utc(first_waiting)
        assert queued_at[1] is None and queued_at[6] is None
    finally:
        await store.close()


async def test_0004_keeps_a_run_resumed_by_0003_recovery_at_the_head(db_url):
    engine = make_engine(db_url)
    try:
        await migrate.upgrade(engine, "0003")
        async with engine.begin() as conn:
            await conn.execute(insert(TaskRow.__table__), [
                _task(1, "in_progress", queued_at=T0),
                _task(2, "in_progress", queued_at=OLD_HEAD_OF_QUEUE, started_at=T0 - timedelta(hours=1)),
            ])
        await migrate.upgrade(engine, "head")
    finally:
        await engine.dispose()
    store = await Store.open(db_url)
    try:
        assert await store.queued_task_ids() == [2, 1]
    finally:
        await store.close()


async def test_0004_downgrades_back_to_the_queued_at_flag(db_url):
    engine = make_engine(db_url)
    try:
        await migrate.upgrade(engine, "0003")
        async with engine.begin() as conn:
            await conn.execute(insert(TaskRow.__table__), [
                _task(1, "in_progress", queued_at=T0), _task(2, "in_progress", started_at=T0)])
        await migrate.upgrade(engine, "head")

        def downgrade(sync_conn) -> None:
            from alembic import command
            cfg = migrate.alembic_config()
            cfg.attributes["connection"] = sync_conn
            command.downgrade(cfg, "0003")

        async with engine.begin() as conn:
            await conn.run_sync(downgrade)
        async with engine.connect() as conn:
            rows = dict((await conn.execute(select(TaskRow.id, TaskRow.state))).all())
            waiting = (await conn.execute(select(TaskRow.id).where(TaskRow.queued_at.is_not(None)))).scalars().all()
        assert rows == {1: "in_progress", 2: "in_progress"} and list(waiting) == [1]
    finally:
        await engine.dispose()


def _utc(value: datetime) -> datetime:
    return value if value.tzinfo else value.replace(tzinfo=UTC)
