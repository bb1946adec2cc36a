"""What a worker does besides running agents: keep its task leases alive (one heartbeat for all
of them), notice a lease it lost, and take over the tasks of workers that stopped renewing.

Timing: a lease lasts TASK_TTL_S and is renewed every HEARTBEAT_S; every worker looks for
expired ones every REAP_S. A worker's death is so acted on within TASK_TTL_S + REAP_S (20 s
with the defaults), inside the 30 s promised for a takeover.
"""
from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable
from typing import Any

from .base import TASK_LEASE, Coordinator, Lease

log = logging.getLogger(__name__)

TASK_TTL_S = 15.0
HEARTBEAT_S = 4.0
REAP_S = 4.0


class TaskLeases:
    """The task leases this process holds, renewed together. `on_lost(lease)` is called for one
    that another process took over (or that could not be renewed before it expired);
    `on_expired(lease, stale)` after this process took over `stale`, another's expired lease."""

    def __init__(self, coordinator: Coordinator, *, on_lost: Callable[[Lease], Awaitable[None]],
                 ttl_s: float = TASK_TTL_S, heartbeat_s: float = HEARTBEAT_S,
                 on_expired: Callable[[Lease, Lease], Awaitable[None]] | None = None, reap_s: float = REAP_S):
        self.coordinator = coordinator
        self.on_lost, self.on_expired = on_lost, on_expired
        self.ttl_s, self.heartbeat_s, self.reap_s = ttl_s, heartbeat_s, reap_s
        self.held: dict[str, Lease] = {}
        self._renewed_at: float | None = None
        self._tasks: list[asyncio.Task[Any]] = []
        self.takeovers = 0

    def hold(self, lease: Lease) -> None:
        self.held[lease.key] = lease

    def drop(self, lease: Lease) -> None:
        if self.held.get(lease.key) == lease:
            del self.held[lease.key]

    def start(self) -> None:
        loop = asyncio.get_running_loop()
        self._renewed_at = loop.time()
        self._tasks.append(loop.create_task(self._beat_forever(), name="task-lease-heartbeat"))
        if self.on_expired is not None:
            self._tasks.append(loop.create_task(self._reap_forever(), name="task-lease-reaper"))

    async def close(self) -> None:
        for task in self._tasks:
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)
        self._tasks.clear()

    async def beat(self) -> None:
        """One heartbeat: renew every held lease, report the ones that are gone."""
        loop = asyncio.get_running_loop()
        if not self.held:
            self._renewed_at = loop.time()
            return
        try:
            still = await self.coordinator.renew_all(TASK_LEASE, self.ttl_s)
        except Exception as exc:
            log.warning("could not renew the task leases: %s", exc)
            if self._renewed_at is not None and loop.time() - self._renewed_at > self.ttl_s - self.heartbeat_s:
                # Not renewed in time: another worker may take the tasks over now. Stop first.
                for lease in list(self.held.values()):
                    await self._lost(lease)
            return
        self._renewed_at = loop.time()
        for key, lease in list(self.held.items()):
            if key not in still:
                await self._lost(lease)

    async def _lost(self, lease: Lease) -> None:
        if self.held.pop(lease.key, None) is None:
            return
        log.warning("%s lost %s (token %d): another worker took it over; stopping its agent",
                    self.coordinator.name, lease.key, lease.token)
        try:
            await self.on_lost(lease)
        except Exception:
            log.exception("stopping the run of %s failed", lease.key)

    async def reap(self) -> None:
        """Take over every task lease whose holder stopped renewing it."""
        for stale in await self.coordinator.expired(TASK_LEASE):
            if stale.key in self.held:
                continue      # ours: the heartbeat is late, not dead
            lease = await self.coordinator.acquire(stale.key, self.ttl_s)
            if lease is None:
                continue      # someone else was quicker
            self.takeovers += 1
            log.warning("%s takes over %s from %s (token %d)", self.coordinator.name, stale.key, stale.holder,
                        lease.token)
            try:
                if self.on_expired is not None:
                    await self.on_expired(lease, stale)
            except Exception:
                log.exception("taking over %s failed", stale.key)

    async def _beat_forever(self) -> None:
        while True:
            await asyncio.sleep(self.heartbeat_s)
            await self.beat()

    async def _reap_forever(self) -> None:
        while True:
            await asyncio.sleep(self.reap_s)
            try:
                await self.reap()
            except Exception as exc:
                log.warning("could not look for lost tasks: %s", exc)
