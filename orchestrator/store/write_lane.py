"""One write transaction at a time, the urgent ones first.

SQLite has one writer. A writer that finds it busy sleeps in SQLite's busy handler (up to 100 ms
a try) instead of queuing, so this process's writes take turns here instead; and a write a person
waits on (a Slack delivery's dedupe claim, an agent's question) goes before the background ones
(logs, usage, outbox bookkeeping) that were waiting already.
"""
from __future__ import annotations

import asyncio
import contextlib
import heapq
import itertools
from collections.abc import AsyncIterator


class WriteLane:
    def __init__(self) -> None:
        self._busy = False
        self._waiting: list[tuple[int, int, asyncio.Future[None]]] = []
        self._order = itertools.count()

    @contextlib.asynccontextmanager
    async def turn(self, *, urgent: bool = False) -> AsyncIterator[None]:
        if self._busy:
            handed: asyncio.Future[None] = asyncio.get_running_loop().create_future()
            heapq.heappush(self._waiting, (0 if urgent else 1, next(self._order), handed))
            try:
                await handed
            except BaseException:
                if handed.done() and not handed.cancelled():
                    self._pass_on()      # the turn came as this waiter was cancelled: hand it on
                raise
        else:
            self._busy = True
        try:
            yield
        finally:
            self._pass_on()

    def _pass_on(self) -> None:
        while self._waiting:
            _, _, handed = heapq.heappop(self._waiting)
            if not handed.done():        # skips waiters cancelled meanwhile
                handed.set_result(None)
                return
        self._busy = False

    @property
    def waiting(self) -> int:
        return sum(1 for _, _, handed in self._waiting if not handed.done())
