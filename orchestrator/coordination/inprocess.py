"""One taskpin process: leases in memory, the journal delivered at once to this process's
handlers. The queue claim still goes through the store (FIFO, compare-and-set)."""
from __future__ import annotations

import asyncio
import itertools
import time
from collections.abc import Callable
from typing import Any

from ..errors import TaskNotFound
from ..states import IllegalTransition, TaskState
from ..store import Store
from ..store.fence import Fence, LeaseLost
from ..store.tables import utcnow
from .base import TASK_LEASE, Claim, Coordinator, JournalEntry, Lease


class InProcessCoordinator(Coordinator):
    shared = False

    def __init__(self, name: str, store: Store, *, clock: Callable[[], float] = time.monotonic):
        super().__init__(name)
        self.store = store
        self.clock = clock
        self._leases: dict[str, tuple[str | None, int, float]] = {}   # key -> (holder, token, expires at)
        self._ids = itertools.count(1)
        self._last_id = 0
        self._pending: set[asyncio.Task[Any]] = set()
        self._order = asyncio.Lock()   # entries reach handlers in the order they were posted

    # ---- leases ------------------------------------------------------------------------

    async def acquire(self, key: str, ttl_s: float, *, take_own: bool = False) -> Lease | None:
        holder, token, expires = self._leases.get(key, (None, 0, 0.0))
        if holder is not None and expires > self.clock() and not (take_own and holder == self.name):
            return None
        self._leases[key] = (self.name, token + 1, self.clock() + ttl_s)
        return Lease(key, self.name, token + 1)

    async def renew(self, lease: Lease, ttl_s: float) -> bool:
        holder, token, _ = self._leases.get(lease.key, (None, 0, 0.0))
        if (holder, token) != (lease.holder, lease.token):
            return False
        self._leases[lease.key] = (holder, token, self.clock() + ttl_s)
        return True

    async def renew_all(self, prefix: str, ttl_s: float) -> set[str]:
        held = set()
        for key, (holder, token, _) in list(self._leases.items()):
            if key.startswith(prefix) and holder == self.name:
                self._leases[key] = (holder, token, self.clock() + ttl_s)
                held.add(key)
        return held

    async def release(self, lease: Lease) -> None:
        holder, token, _ = self._leases.get(lease.key, (None, 0, 0.0))
        if (holder, token) == (lease.holder, lease.token):
            self._leases[lease.key] = (None, token, 0.0)

    async def expired(self, prefix: str) -> list[Lease]:
        now = self.clock()
        return [Lease(key, holder, token) for key, (holder, token, expires) in self._leases.items()
                if key.startswith(prefix) and holder is not None and expires <= now]

    async def holder(self, key: str) -> Lease | None:
        holder, token, expires = self._leases.get(key, (None, 0, 0.0))
        return Lease(key, holder, token) if holder is not None and expires > self.clock() else None

    async def live(self, prefix: str) -> list[Lease]:
        now = self.clock()
        return [Lease(key, holder, token) for key, (holder, token, expires) in sorted(self._leases.items())
                if key.startswith(prefix) and holder is not None and expires > now]

    def fence(self, lease: Lease) -> Fence:
        def check(_connection: Any) -> None:
            holder, token, _ = self._leases.get(lease.key, (None, 0, 0.0))
            if (holder, token) != (lease.holder, lease.token):
                raise LeaseLost(lease.key, lease.holder, lease.token)
        return check

    # ---- the queue ----------------------------------------------------------------------

    async def claim_next(self, ttl_s: float, *, actor: str = "taskpin", reason: str = "") -> Claim | None:
        for task_id in await self.store.queued_task_ids():
            try:
                await self.store.transition(task_id, TaskState.QUEUED, TaskState.IN_PROGRESS, actor=actor,
                                            reason=reason or "a session slot is free")
            except (IllegalTransition, TaskNotFound):   # cancelled meanwhile
                continue
            else:
                key = f"{TASK_LEASE}{task_id}"
                _, token, _ = self._leases.get(key, (None, 0, 0.0))
                self._leases[key] = (self.name, token + 1, self.clock() + ttl_s)
                return Claim(task_id, Lease(key, self.name, token + 1))
        return None

    # ---- the journal: straight to this process's handlers ---------------------------------

    def post_nowait(self, kind: str, data: dict[str, Any], task_id: int | None = None) -> None:
        entry = self._entry(kind, data, task_id)
        task = asyncio.get_running_loop().create_task(self._deliver_in_order(entry))
        self._pending.add(task)
        task.add_done_callback(self._pending.discard)

    async def post(self, kind: str, data: dict[str, Any], task_id: int | None = None) -> int:
        entry = self._entry(kind, data, task_id)
        await self._deliver_in_order(entry)
        return entry.id

    async def read_since(self, after_id: int, kinds: set[str] | None = None, limit: int = 500) -> list[JournalEntry]:
        return []   # nothing is stored: every entry was delivered when it was posted

    async def latest_id(self) -> int:
        return self._last_id

    def _entry(self, kind: str, data: dict[str, Any], task_id: int | None) -> JournalEntry:
        self._last_id = next(self._ids)
        return JournalEntry(self._last_id, self.name, kind, task_id, dict(data), utcnow())

    async def _deliver_in_order(self, entry: JournalEntry) -> None:
        async with self._order:
            await self._deliver(entry)

    async def close(self) -> None:
        if self._pending:
            await asyncio.gather(*self._pending, return_exceptions=True)
