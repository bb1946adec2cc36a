"""The engine's part in a deployment of several processes (nothing of it runs in one process).

A process that runs agents (role all or worker) holds `worker:NAME`, a lease on every task it
runs (one heartbeat renews them all), takes over the tasks of workers that stopped renewing,
and serves calls for its tasks (answer, cancel, follow-up) and for approvals. Any process reaches
the run of a task wherever it is through `call_holder`, and a worker through `call_worker`.
"""
from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Awaitable, Callable, Coroutine, Iterator
from typing import Any

from ..errors import ActionRefused
from ..states import LIVE_STATES, TaskState
from ..store.fence import current_fence
from ..world import World
from .base import EVENT, TASK_LEASE, WORKER_LEASE, Coordinator, JournalEntry, Lease
from .calls import Calls
from .duties import TaskLeases
from .takeover import settle_lost_task

log = logging.getLogger(__name__)
S = TaskState


def task_key(task_id: int) -> str:
    return f"{TASK_LEASE}{task_id}"


class Cluster:
    def __init__(self, world: World, coordinator: Coordinator, *, runs_agents: bool = True):
        self.world, self.coordinator, self.runs_agents = world, coordinator, runs_agents
        self.shared = coordinator.shared
        self.calls = Calls(coordinator) if self.shared else None
        self.leases: TaskLeases | None = None
        self._on_lost: Callable[[Lease], Awaitable[None]] | None = None
        self._kick: Callable[[], Coroutine[Any, Any, None]] | None = None
        self._worker: Lease | None = None
        self._tasks: list[asyncio.Task[Any]] = []

    @property
    def name(self) -> str:
        return self.coordinator.name

    @property
    def ttl_s(self) -> float:
        """A task lease's life without renewal (TASKPIN_LEASE_TTL_S)."""
        return self.world.settings.lease_ttl_s

    # ---- life cycle ----------------------------------------------------------------------

    async def start(self, *, on_lost: Callable[[Lease], Awaitable[None]], kick: Callable[[], Coroutine[Any, Any, None]],
                    handlers: dict[str, Callable[[dict[str, Any]], Awaitable[Any]]]) -> None:
        """Before the engine schedules anything: take this worker's name, settle what a dead
        predecessor of the same name (or a worker that vanished before any lease was kept)
        left, and start the heartbeat, the reaper and the calls."""
        if not self.shared or not self.runs_agents:
            return
        self._on_lost, self._kick = on_lost, kick
        self._worker = await self.coordinator.acquire(WORKER_LEASE + self.name, self.ttl_s, take_own=True)
        self.leases = TaskLeases(self.coordinator, on_lost=on_lost, on_expired=self._take_over, ttl_s=self.ttl_s,
                                 heartbeat_s=self.ttl_s / 4, reap_s=self.ttl_s / 4)
        assert self.calls is not None   # shared: the calls exist
        for op, handler in handlers.items():
            self.calls.handle(op, handler)
        self.coordinator.subscribe(self._on_event, {EVENT})
        await self._settle_orphans()
        self.leases.start()
        self._tasks.append(asyncio.create_task(self._keep_worker_lease(), name="worker-lease"))
        self._tasks.append(asyncio.create_task(self._kick_now_and_then(), name="queue-poll"))

    async def close(self) -> None:
        for task in self._tasks:
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)
        if self.leases is not None:
            await self.leases.close()
        if self._worker is not None:
            await self.coordinator.release(self._worker)

    # ---- leases of this process's runs -----------------------------------------------------

    def hold(self, lease: Lease) -> None:
        if self.leases is not None:
            self.leases.hold(lease)

    async def release(self, lease: Lease) -> None:
        if self.leases is not None:
            self.leases.drop(lease)
        try:
            await self.coordinator.release(lease)
        except Exception as exc:   # it expires on its own
            log.info("could not release %s: %s", lease.key, exc)

    def fenced(self, lease: Lease) -> None:
        """Make every store transaction of the calling task (and of the tasks it starts) prove
        `lease` is still held."""
        if self.shared:
            current_fence.set(self.coordinator.fence(lease))

    @contextlib.contextmanager
    def fencing(self, lease: Lease) -> Iterator[None]:
        """`fenced` for the calling task until the block ends: an answer or an approval is
        fenced where it is made, with no task of its own to wait for the event loop's turn."""
        if not self.shared:
            yield
            return
        token = current_fence.set(self.coordinator.fence(lease))
        try:
            yield
        finally:
            current_fence.reset(token)

    # ---- reaching the process that runs a task ----------------------------------------------

    async def holder(self, task_id: int) -> Lease | None:
        return await self.coordinator.holder(task_key(task_id))

    async def call_holder(self, task_id: int, op: str, args: dict[str, Any], *, timeout_s: float | None = None,
                          holder: Lease | None = None) -> Any:
        holder = holder or await self.holder(task_id)
        if holder is None or self.calls is None:
            raise ActionRefused("the agent is no longer running")
        return await self.calls.call(holder.holder, op, args, task_id=task_id, timeout_s=timeout_s)

    async def call_worker(self, op: str, args: dict[str, Any], *, prefer: str | None = None,
                          timeout_s: float | None = None) -> Any:
        """Run `op` in a worker: `prefer` (the task's last worker: its worktree is there) when it
        runs, else any running worker."""
        workers = [lease.holder for lease in await self.coordinator.live(WORKER_LEASE)] if self.calls else []
        if not workers:
            raise ActionRefused("no taskpin worker is running to do this; start one (`taskpin run --role worker`) "
                                "and try again")
        target = prefer if prefer in workers else workers[0]
        assert self.calls is not None
        return await self.calls.call(target, op, args, timeout_s=timeout_s)

    # ---- taking over -------------------------------------------------------------------------

    async def _take_over(self, lease: Lease, stale: Lease) -> None:
        await self.settle(lease, stale.holder)

    async def settle(self, lease: Lease, lost_worker: str, *, why: str | None = None) -> None:
        """Settle the task of `lease` (held by this process now) for `lost_worker`, then free it."""
        task_id = lease.task_id
        if task_id is None:
            return   # not a task's lease: nothing to settle

        async def settle() -> str:
            self.fenced(lease)
            return await settle_lost_task(self.world, task_id, lost_worker, why=why)
        try:
            done = await asyncio.create_task(settle(), name=f"takeover:{task_id}")
            log.warning("task #%s of %s: %s", task_id, lost_worker, done)
        finally:
            await self.release(lease)
        if self._kick is not None:
            await self._kick()

    async def _settle_orphans(self) -> None:
        """Live or approving tasks nobody holds a lease on (a worker from before leases, or one
        that died between its claim and its first write), and those of this name's predecessor."""
        for task in await self.world.store.list_tasks(states=[*LIVE_STATES, S.APPROVING]):
            key = task_key(task.id)
            current = await self.coordinator.holder(key)
            if current is not None and current.holder != self.name:
                continue   # alive elsewhere (or about to expire: the reaper will see it)
            lease = await self.coordinator.acquire(key, self.ttl_s, take_own=True)
            if lease is not None:
                await self.settle(lease, task.worker or self.name)

    async def _keep_worker_lease(self) -> None:
        while True:
            await asyncio.sleep(self.ttl_s / 4)
            try:
                if self._worker is None or not await self.coordinator.renew(self._worker, self.ttl_s):
                    self._worker = await self.coordinator.acquire(WORKER_LEASE + self.name, self.ttl_s,
                                                                  take_own=True)
            except Exception as exc:
                log.warning("could not renew this worker's lease: %s", exc)

    async def _on_event(self, entry: JournalEntry) -> None:
        """A task joined the queue somewhere: a free slot here takes it at once."""
        if entry.data.get("to") == S.QUEUED.value and self._kick is not None:
            asyncio.get_running_loop().create_task(self._kick())

    async def _kick_now_and_then(self) -> None:
        """In case a notification was missed: look at the queue now and then anyway."""
        while True:
            await asyncio.sleep(min(5.0, self.ttl_s / 4))
            try:
                if self._kick is not None:
                    await self._kick()
            except Exception as exc:
                log.warning("could not look at the queue: %s", exc)
