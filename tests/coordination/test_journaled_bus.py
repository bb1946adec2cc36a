"""Events of a process on a shared PostgreSQL database: every publisher of the core uses the
journaled bus, and agent output and usage are droppable: shown directly where the surface runs,
journaled from elsewhere unless the journal is behind."""
from __future__ import annotations

import asyncio

import pytest

from orchestrator import Orchestrator, Settings, UsageReported
from orchestrator.coordination import JournaledBus, SurfaceFeed
from orchestrator.coordination.postgres import PostgresCoordinator
from orchestrator.coordination.relay import JOURNAL_BACKLOG
from orchestrator.events import AgentOutput, TaskCreated


@pytest.fixture
async def node(pg_url, tmp_path, git_repo):
    settings = Settings(_env_file=None, database_url=pg_url, workspaces_dir=tmp_path / "wt", log_dir=tmp_path / "logs",
                        repos={"app": {"path": str(git_repo), "base_branch": "main"}}, default_repo="app",
                        agents={"bot": {"kind": "command", "command": ["true"]}}, default_agent="bot")
    core = await Orchestrator.open(settings)
    coordinator = PostgresCoordinator("A", core.store, pg_url, poll_s=0.3)
    await coordinator.start()
    bus = JournaledBus(coordinator)
    core.use_coordination(coordinator, bus=bus)
    yield core, coordinator, bus
    await coordinator.close()
    await core.store.close()


def _probe(bus: JournaledBus) -> list:
    """Every event the bus hands its subscribers, in order."""
    seen: list = []

    async def on_event(event) -> None:
        seen.append(event)
    bus.subscribe(on_event, name="probe")
    return seen


def test_every_publisher_of_the_core_uses_the_bus_in_force(node):
    core, _, bus = node
    holders = [obj for obj in vars(core.world).values() if hasattr(obj, "bus")]
    assert holders, "the usage writer and the policies publish events"
    assert core.bus is bus and core.world.bus is bus
    assert all(obj.bus is bus for obj in holders), [type(o).__name__ for o in holders if o.bus is not bus]


async def test_usage_totals_reach_the_surface_through_the_journaled_bus(node):
    core, coordinator, bus = node
    task = await core.create_task(prompt="p", owner="U1")
    feed = SurfaceFeed(coordinator, core.store, bus)
    seen = _probe(bus)
    await feed.start()
    try:
        core.world.usage_writer.add(task.id, None, 120, 30, 0.02)
        await core.world.usage_writer.flush()
        async with asyncio.timeout(10):
            while not any(isinstance(e, UsageReported) for e in seen):
                await asyncio.sleep(0.05)
    finally:
        await feed.stop()
    usage = next(e for e in seen if isinstance(e, UsageReported))
    assert (usage.task_id, usage.input_tokens, usage.output_tokens) == (task.id, 120, 30)


async def test_output_is_not_journaled_while_the_journal_is_behind_but_state_events_always_are(node):
    core, coordinator, bus = node
    task = await core.create_task(prompt="p", owner="U1")
    posted: list[str] = []
    coordinator.post_nowait = lambda kind, data, task_id=None: posted.append(data["type"])   # type: ignore[method-assign]
    type(coordinator).journal_backlog = property(lambda self: JOURNAL_BACKLOG)           # the writer is behind
    try:
        bus.publish(AgentOutput(task.id, "line 1", False))
        bus.publish(TaskCreated(task))
    finally:
        del type(coordinator).journal_backlog
    assert posted == ["TaskCreated"] and bus.not_journaled == 1


async def test_where_the_surface_runs_its_own_events_are_shown_at_once_and_once(node, pg_url):
    """A state change made in the process that shows the surface reaches its subscribers before
    the journal is read back, exactly once; one made in another process comes through the journal."""
    core, coordinator, bus = node
    other = PostgresCoordinator("B", core.store, pg_url, poll_s=0.3)
    await other.start()
    feed = SurfaceFeed(coordinator, core.store, bus)
    seen = _probe(bus)
    await feed.start()
    try:
        task = await core.create_task(prompt="here", owner="U1")
        await asyncio.sleep(0)      # the subscriber's turn; the journal write is still under way
        assert [e.task.id for e in seen if isinstance(e, TaskCreated)] == [task.id]
        elsewhere = await core.create_task(prompt="elsewhere", owner="U1")
        remote_bus = JournaledBus(other)             # a worker's bus: it does not show the surface
        remote_bus.publish(TaskCreated(elsewhere))
        async with asyncio.timeout(10):
            while sum(isinstance(e, TaskCreated) and e.task.id == elsewhere.id for e in seen) < 2:
                await asyncio.sleep(0.05)     # once from here, once through the journal from B
        await asyncio.sleep(1.0)              # the journal read back: nothing shown twice from here
        assert sum(isinstance(e, TaskCreated) and e.task.id == task.id for e in seen) == 1
    finally:
        await feed.stop()
        await other.close()
