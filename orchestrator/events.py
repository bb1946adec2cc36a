"""Typed events the core publishes, and the bus that delivers them.

Each subscriber gets its own queue and its own delivery task, so a slow subscriber never
delays the core or another subscriber. High-volume events (agent output, usage) are
droppable: when a subscriber's queue is full they are dropped for that subscriber and
counted. Everything else is always delivered.
"""
from __future__ import annotations

import asyncio
import logging
from collections import deque
from collections.abc import Awaitable, Callable
from dataclasses import dataclass

from .models import InterventionView, TaskView
from .states import TaskState

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class TaskCreated:
    task: TaskView


@dataclass(frozen=True)
class TaskStateChanged:
    task: TaskView
    from_state: TaskState
    to_state: TaskState
    actor: str
    reason: str


@dataclass(frozen=True)
class TaskUpdated:
    """Something shown on a card changed without a state change (queue position, diff...)."""

    task: TaskView


@dataclass(frozen=True)
class InterventionRequested:
    task: TaskView
    intervention: InterventionView


@dataclass(frozen=True)
class InterventionResolved:
    task: TaskView
    intervention: InterventionView   # status answered / expired / cancelled, with who and what


@dataclass(frozen=True)
class InterventionReminder:
    task: TaskView
    intervention: InterventionView


@dataclass(frozen=True)
class AnswerNotDelivered:
    """A human's answer could not be handed to the agent: the question is still open."""

    task: TaskView
    intervention: InterventionView
    actor: str
    error: str


@dataclass(frozen=True)
class AttemptFailed:
    """One attempt failed; `retry_in` is set when another attempt will follow."""

    task: TaskView
    attempt: int
    error: str
    retry_in: float | None


@dataclass(frozen=True)
class TaskNotice:
    """Something the task's people should read in its thread: a warning while preparing its
    worktree, a pull request opened or updated. `link` (with `link_text`) goes after `text`."""

    task: TaskView
    text: str
    link: str | None = None
    link_text: str | None = None
    warning: bool = False


@dataclass(frozen=True)
class PolicyDecided:
    """A permission request answered by an approval-policy rule, without a human. Surfaces
    summarise these in batches (never one message each); `reason` says which rule decided."""

    task: TaskView
    intervention: InterventionView   # the stored request, answered by "policy"
    effect: str                      # allow | deny
    reason: str                      # denied by taskpin policy rule `Bash(rm -rf *)` (repos.api)
    rule: str = ""                   # the rule that decided, without its effect: Bash(rm -rf *)
    source: str = ""                 # where it is written: repos.api, agents.claude, rule 3, ...


@dataclass(frozen=True)
class DependencyFailed:
    """A task that `task` waits for failed (or was rejected or cancelled): `task` keeps waiting
    until someone dispatches it anyway or cancels it (or the dependency is retried and completes)."""

    task: TaskView
    dependency: TaskView


@dataclass(frozen=True)
class AgentOutput:
    task_id: int
    text: str
    activity: bool = False   # a tool-activity line rather than agent prose


@dataclass(frozen=True)
class UsageReported:
    task_id: int
    input_tokens: int       # totals for the task so far
    output_tokens: int
    cost_usd: float


Event = (
    TaskCreated | TaskStateChanged | TaskUpdated | InterventionRequested | InterventionResolved
    | InterventionReminder | AnswerNotDelivered | AttemptFailed | AgentOutput | UsageReported | TaskNotice
    | PolicyDecided | DependencyFailed
)
DROPPABLE = (AgentOutput, UsageReported)

Handler = Callable[[Event], Awaitable[None]]


class Subscription:
    def __init__(self, handler: Handler, name: str, max_queued: int, ignore: tuple[type, ...] = ()):
        self.handler = handler
        self.name = name
        self.max_queued = max_queued
        self.ignore = ignore
        self.dropped = 0
        self._queue: deque[Event] = deque()
        self._ready = asyncio.Event()
        self._task: asyncio.Task[None] | None = None
        self._closed = False
        self._busy = False

    def offer(self, event: Event) -> None:
        if self._closed or isinstance(event, self.ignore):
            return
        if isinstance(event, DROPPABLE) and len(self._queue) >= self.max_queued:
            self.dropped += 1
            return
        self._queue.append(event)
        self._ready.set()

    @property
    def pending(self) -> int:
        return len(self._queue)

    async def _run(self) -> None:
        while True:
            await self._ready.wait()
            while self._queue:
                event = self._queue.popleft()
                self._busy = True
                try:
                    await self.handler(event)
                except asyncio.CancelledError:
                    raise
                except Exception:
                    log.exception("event subscriber %s failed on %s", self.name, type(event).__name__)
                finally:
                    self._busy = False
            if self._closed:
                return
            self._ready.clear()

    async def drain(self) -> None:
        """Wait until everything offered so far has been handled."""
        while (self._queue or self._busy) and self._task and not self._task.done():  # noqa: ASYNC110 - shutdown and tests only; the worker signals no per-item event
            await asyncio.sleep(0.005)

    async def close(self) -> None:
        self._closed = True
        self._ready.set()
        if self._task:
            try:
                await asyncio.wait_for(self._task, timeout=5)
            except (TimeoutError, asyncio.CancelledError):
                self._task.cancel()


class EventBus:
    def __init__(self, max_queued: int = 10_000):
        self._subs: list[Subscription] = []
        self._max_queued = max_queued

    def subscribe(self, handler: Handler, *, name: str = "subscriber", max_queued: int | None = None,
                  ignore: tuple[type, ...] = ()) -> Subscription:
        """Deliver events to `handler`, in order, except those of the `ignore` types."""
        sub = Subscription(handler, name, max_queued or self._max_queued, ignore)
        sub._task = asyncio.get_running_loop().create_task(sub._run(), name=f"events:{name}")
        self._subs.append(sub)
        return sub

    async def unsubscribe(self, sub: Subscription) -> None:
        if sub in self._subs:
            self._subs.remove(sub)
        await sub.close()

    def publish(self, event: Event) -> None:
        for sub in self._subs:
            sub.offer(event)

    async def drain(self) -> None:
        for sub in list(self._subs):
            await sub.drain()

    async def close(self) -> None:
        for sub in list(self._subs):
            await self.unsubscribe(sub)
