"""Token and cost usage of every running task, written to the store together.

Agents report usage often (some after every message). Runners keep their own totals in memory
for budget checks and hand the deltas here; one transaction per interval writes the deltas of
every task at once, then each task's new totals go out as one UsageReported.
"""
from __future__ import annotations

import asyncio
import logging

from .events import EventBus, UsageReported
from .store import Store

log = logging.getLogger(__name__)

FLUSH_INTERVAL_S = 0.5


class UsageWriter:
    def __init__(self, store: Store, bus: EventBus, interval_s: float = FLUSH_INTERVAL_S):
        self.store = store
        self.bus = bus
        self.interval_s = interval_s
        self._pending: dict[tuple[int, int | None], list[float]] = {}   # (task id, attempt row id) -> [in, out, cost]
        self._lock = asyncio.Lock()
        self._flusher: asyncio.Task[None] | None = None

    def add(self, task_id: int, attempt_id: int | None, input_tokens: int, output_tokens: int,
            cost_usd: float) -> None:
        """Record usage; it reaches the store within the interval (or at the next flush())."""
        acc = self._pending.setdefault((task_id, attempt_id), [0, 0, 0.0])
        acc[0] += input_tokens
        acc[1] += output_tokens
        acc[2] += cost_usd
        if self._flusher is None or self._flusher.done():
            self._flusher = asyncio.get_running_loop().create_task(self._flush_later(), name="usage-writer")

    async def _flush_later(self) -> None:
        while self._pending:
            await asyncio.sleep(self.interval_s)
            try:
                await self.flush()
            except Exception as exc:   # kept pending: the next interval tries again
                log.warning("could not write usage to the store (will retry): %s", exc)

    async def flush(self) -> None:
        """Write everything recorded so far, in one transaction, and report the new totals."""
        async with self._lock:
            pending, self._pending = self._pending, {}
            if not pending:
                return
            try:
                totals = await self.store.add_usage_many([(t, a, int(d[0]), int(d[1]), float(d[2]))
                                                         for (t, a), d in pending.items()])
            except BaseException:
                for key, delta in pending.items():     # nothing is lost: merged back for the next try
                    acc = self._pending.setdefault(key, [0, 0, 0.0])
                    for i, value in enumerate(delta):
                        acc[i] += value
                raise
        for task_id, (input_tokens, output_tokens, cost_usd) in totals.items():
            self.bus.publish(UsageReported(task_id, input_tokens, output_tokens, cost_usd))
