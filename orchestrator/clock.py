"""Where the core measures time: idle, wall-clock and intervention deadlines, reminders,
retry backoff, usage flushes. The real clock by default; tests hand in a ManualClock and move
time themselves, so they assert what the core asked for instead of how long things took."""
from __future__ import annotations

import asyncio
import heapq
import itertools
import time
from collections.abc import Awaitable
from typing import Any, Protocol, TypeVar

T = TypeVar("T")


class Clock(Protocol):
    def monotonic(self) -> float:
        """Seconds on a clock that never goes back."""
        ...

    async def sleep(self, seconds: float) -> None:
        ...

    async def wait_for(self, awaitable: Awaitable[T], timeout: float) -> T:
        """The awaitable's result, or TimeoutError once `timeout` seconds passed (it is cancelled)."""
        ...


class SystemClock:
    def monotonic(self) -> float:
        return time.monotonic()

    async def sleep(self, seconds: float) -> None:
        await asyncio.sleep(seconds)

    async def wait_for(self, awaitable: Awaitable[T], timeout: float) -> T:
        # Not asyncio.wait_for: on Python 3.11 it swallows a cancellation that arrives as the
        # awaitable completes, and a loop around it then never stops. asyncio.timeout does not.
        async with asyncio.timeout(timeout):
            return await awaitable


class ManualClock:
    """Time moves only when advance() says so. `sleeps` records every sleep asked for."""

    def __init__(self, start: float = 0.0):
        self.now = start
        self.sleeps: list[float] = []
        self._timers: list[tuple[float, int, asyncio.Future[None]]] = []
        self._order = itertools.count()
        self._changed = asyncio.Event()

    def monotonic(self) -> float:
        return self.now

    def _timer(self, seconds: float) -> asyncio.Future[None]:
        future: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        if seconds <= 0:
            future.set_result(None)
        else:
            heapq.heappush(self._timers, (self.now + seconds, next(self._order), future))
        self._changed.set()
        return future

    async def sleep(self, seconds: float) -> None:
        self.sleeps.append(seconds)
        await self._timer(seconds)

    async def wait_for(self, awaitable: Awaitable[T], timeout: float) -> T:
        work = asyncio.ensure_future(awaitable)
        timer = self._timer(timeout)
        racing: set[asyncio.Future[Any]] = {work, timer}
        try:
            await asyncio.wait(racing, return_when=asyncio.FIRST_COMPLETED)
        finally:
            timer.cancel()
            if not work.done():
                work.cancel()
        if work.done() and not work.cancelled():
            return work.result()
        raise TimeoutError

    def advance(self, seconds: float) -> None:
        """Move time on, waking every sleep and wait whose deadline has come."""
        self.now += seconds
        while self._timers and self._timers[0][0] <= self.now:
            _, _, future = heapq.heappop(self._timers)
            if not future.done():
                future.set_result(None)

    def deadlines(self) -> list[float]:
        """How far ahead each pending sleep or wait ends, soonest first."""
        return sorted(at - self.now for at, _, future in self._timers if not future.done())

    async def wait_for_sleeps(self, count: int, timeout: float = 15) -> None:
        """Until `count` sleeps were asked for (real time bounds the wait: a test must not hang)."""
        async def enough() -> None:
            while len(self.sleeps) < count:
                self._changed.clear()
                await self._changed.wait()
        await asyncio.wait_for(enough(), timeout)
