"""The skeleton every adapter's session is built on.

- SessionEvents: the normalized events in order, and one final event (Finished or Failed)
  per run of events(): whatever an adapter emits after it is dropped.
- PendingRequests: the interventions the agent is waiting on, by request id; an answer to a
  request that is gone is one clear HarnessError.
- Cumulative: an agent's running total (cost, tokens) turned into the deltas Usage carries.
- BaseSession: events(), pid, supports_follow_up and an idempotent stop() around the
  adapter's own `_shutdown()`.
- cancel_and_wait / wait_quietly / settle: ending helper tasks without ever swallowing the
  caller's own cancellation (CancelledError always reaches the caller).
"""
from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator, Awaitable, Iterable, Iterator
from typing import Any, Generic, TypeVar

from .base import Failed, Finished, HarnessEvent
from .errors import HarnessError

T = TypeVar("T")


QUEUED_LIMIT = 500   # events an adapter may queue ahead of the reader; see room()


class SessionEvents:
    """The queue behind AgentSession.events()."""

    def __init__(self) -> None:
        self._queue: asyncio.Queue[HarnessEvent] = asyncio.Queue()
        self._final: Finished | Failed | None = None
        self._delivered = False
        self._room = asyncio.Event()
        self._room.set()
        self._released = False   # release(): no back-pressure any more (the session is stopping)
        self._unblocked = 0      # unblocked() blocks open

    @property
    def queued(self) -> int:
        """Events waiting to be read."""
        return self._queue.qsize()

    async def room(self) -> None:
        """Wait while QUEUED_LIMIT events are waiting to be read. An adapter awaits this before
        reading more from the agent, so a core that falls behind stops reading, the agent's pipe
        fills and its writes block (back-pressure) instead of an unbounded backlog in memory.
        Never waits once the final event is queued (nothing more is queued), after release(),
        or inside unblocked()."""
        while (self._queue.qsize() >= QUEUED_LIMIT and self._final is None
               and not self._released and not self._unblocked):
            self._room.clear()
            await self._room.wait()

    def release(self) -> None:
        """Back-pressure off for good: the session is stopping, and an agent blocked writing
        to a pipe nobody reads could not end its turn or exit. Wakes every room() waiter."""
        self._released = True
        self._room.set()

    @contextlib.contextmanager
    def unblocked(self) -> Iterator[None]:
        """While inside, room() does not wait (and a waiting one returns): for an adapter that
        awaits an answer from the agent which only reading on can bring (e.g. the response to
        a control request, read by the same reader that room() would pause)."""
        self._unblocked += 1
        self._room.set()
        try:
            yield
        finally:
            self._unblocked -= 1

    @property
    def final(self) -> Finished | Failed | None:
        """The final event, once there is one."""
        return self._final

    @property
    def ended(self) -> bool:
        return self._final is not None

    def emit(self, event: HarnessEvent) -> None:
        """Queue an event; a Finished or Failed is the final one (see finish)."""
        if isinstance(event, (Finished, Failed)):
            self.finish(event)
        elif self._final is None:
            self._queue.put_nowait(event)

    def finish(self, event: Finished | Failed) -> bool:
        """Queue the final event; False (and nothing queued) when there already is one."""
        if self._final is not None:
            return False
        self._final = event
        self._queue.put_nowait(event)
        self._room.set()   # nothing more is queued: a reader paused in room() may read on
        return True

    def reopen(self) -> None:
        """A new turn after the final event (an agent that takes follow-ups after finishing):
        events() then runs again until the next final event."""
        if self._final is not None and self._delivered:
            self._final = None
            self._delivered = False

    async def stream(self) -> AsyncIterator[HarnessEvent]:
        if self._delivered:
            return
        while True:
            event = await self._queue.get()
            if not self._room.is_set() and self._queue.qsize() < QUEUED_LIMIT // 2:
                self._room.set()
            if isinstance(event, (Finished, Failed)):
                self._delivered = True
                yield event
                return
            yield event


class PendingRequests(Generic[T]):
    """What the agent waits on, by the request id the core answers with."""

    def __init__(self, agent: str):
        self._agent = agent
        self._items: dict[str, T] = {}

    def add(self, request_id: str, value: T) -> None:
        self._items[request_id] = value

    def get(self, request_id: str) -> T | None:
        return self._items.get(request_id)

    def require(self, request_id: str) -> T:
        """The request, or HarnessError when the agent no longer waits for it."""
        try:
            return self._items[request_id]
        except KeyError:
            raise HarnessError(f"{self._agent} is no longer waiting for request {request_id} "
                               "(the turn ended or was interrupted)") from None

    def take(self, request_id: str) -> T:
        value = self.require(request_id)
        del self._items[request_id]
        return value

    def discard(self, request_id: str, value: T | None = None) -> None:
        """Forget `request_id` (only if it still holds `value`, when given)."""
        if value is None or self._items.get(request_id) is value:
            self._items.pop(request_id, None)

    def drain(self) -> list[T]:
        """Every waiting request, removed."""
        values = list(self._items.values())
        self._items.clear()
        return values

    def items(self) -> list[tuple[str, T]]:
        return list(self._items.items())

    def __contains__(self, request_id: object) -> bool:
        return request_id in self._items

    def __len__(self) -> int:
        return len(self._items)

    def __iter__(self) -> Iterator[str]:
        return iter(list(self._items))


class Cumulative:
    """A running total an agent reports (cost so far, tokens so far) -> the growth since the
    last report. `start` is what was already accounted for (None: the first report is the
    baseline itself). With `restart_on_drop`, a total below the last one starts a new count."""

    def __init__(self, start: float | None = 0.0, *, restart_on_drop: bool = False):
        self.seen = start
        self._restart = restart_on_drop

    def advance(self, total: float) -> float:
        if self.seen is None:
            self.seen = total
            return 0.0
        if total < self.seen and self._restart:
            self.seen = total
            return total
        delta = max(0.0, total - self.seen)
        self.seen = max(self.seen, total)
        return delta


class BaseSession:
    """The part of AgentSession every adapter shares. Subclasses set `self.out` events,
    implement `_shutdown()` (end the agent and everything it started) and the protocol's
    answer/send/interrupt, and expose their process as `pid`."""

    def __init__(self, *, follow_up: bool = True) -> None:
        self.out = SessionEvents()
        self._follow_up = follow_up
        self._stop_lock = asyncio.Lock()
        self._stopped = False

    @property
    def pid(self) -> int | None:
        return None

    @property
    def supports_follow_up(self) -> bool:
        return self._follow_up

    @property
    def stopped(self) -> bool:
        return self._stopped

    def events(self) -> AsyncIterator[HarnessEvent]:
        return self.out.stream()

    async def stop(self) -> None:
        """End the session and everything it started. Safe to call twice (and concurrently);
        a stop that is cancelled propagates the cancellation, and the next stop() finishes it."""
        async with self._stop_lock:
            if self._stopped:
                return
            await self._shutdown()
            self._stopped = True

    async def _shutdown(self) -> None:  # pragma: no cover - every adapter overrides it
        raise NotImplementedError


# ---- helper tasks -----------------------------------------------------------------------

def _retrieve(task: asyncio.Future[Any]) -> None:
    if task.done() and not task.cancelled():
        task.exception()   # mark it retrieved: the task's own failure is not the caller's


async def cancel_and_wait(task: asyncio.Future[Any] | None) -> None:
    """Cancel `task` and wait until it has ended. The task's own CancelledError or failure
    is not raised; the caller's cancellation is."""
    if task is None:
        return
    if not task.done():
        task.cancel()
        await asyncio.wait({task})
    _retrieve(task)


async def wait_quietly(aw: Awaitable[object] | None, timeout: float | None) -> bool:
    """Wait up to `timeout` for `aw` (a task is not cancelled on timeout: shielded); True if
    it ended. Its result or failure is ignored; the caller's cancellation is raised."""
    if aw is None:
        return True
    task = asyncio.ensure_future(aw)
    done, _ = await asyncio.wait({task}, timeout=timeout)
    if not done and not isinstance(aw, asyncio.Future):
        await cancel_and_wait(task)     # a coroutine we wrapped: nobody else will end it
    _retrieve(task)
    return bool(done)


async def settle(tasks: Iterable[asyncio.Future[Any]], timeout: float) -> None:
    """Give `tasks` up to `timeout` seconds to end, then cancel the rest and wait for them."""
    tasks = [t for t in tasks if t is not None]
    if not tasks:
        return
    _, pending = await asyncio.wait(tasks, timeout=timeout)
    for task in pending:
        task.cancel()
    if pending:
        await asyncio.wait(pending)
    for task in tasks:
        _retrieve(task)
