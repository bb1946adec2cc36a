"""Core events across processes: the bus of a process on a shared database writes what it is
given to the journal, and the process holding the board-writer lease reads every process's
events back, in journal order, into its own subscribers (the board, the task threads).

An entry names the task and intervention by id and carries only what no row holds (a state
change's actor and reason, an attempt's error, a line of agent output); the reader reads the
task and the intervention as they are now.
"""
from __future__ import annotations

import asyncio
import logging
import secrets
from typing import Any, cast

from ..events import (
    AgentOutput,
    AttemptFailed,
    Event,
    EventBus,
    InterventionReminder,
    InterventionRequested,
    InterventionResolved,
    TaskCreated,
    TaskStateChanged,
    TaskUpdated,
    UsageReported,
)
from ..states import TaskState
from ..store import Store, TaskNotFound
from .base import EVENT, Coordinator, JournalEntry

log = logging.getLogger(__name__)

OUTPUT_CHARS = 4000               # agent output is droppable: an entry keeps its tail at most
CURSOR_KEY = "coordination.surface_cursor"
CURSOR_EVERY = 1000               # entries delivered before the subscribers are waited for and the cursor stored
_INTERVENTION_EVENTS = {"InterventionRequested": InterventionRequested, "InterventionResolved": InterventionResolved,
                        "InterventionReminder": InterventionReminder}


def encode(event: Event) -> tuple[int | None, dict[str, Any]]:
    """(task id, what the entry carries) for one event."""
    kind = type(event).__name__
    match event:
        case TaskStateChanged():
            return event.task.id, {"type": kind, "from": event.from_state.value, "to": event.to_state.value,
                                   "actor": event.actor, "reason": event.reason}
        case InterventionRequested() | InterventionResolved() | InterventionReminder():
            return event.task.id, {"type": kind, "iv": event.intervention.id}
        case AttemptFailed():
            return event.task.id, {"type": kind, "attempt": event.attempt, "error": event.error,
                                   "retry_in": event.retry_in}
        case AgentOutput():
            return event.task_id, {"type": kind, "text": event.text[-OUTPUT_CHARS:], "activity": event.activity}
        case UsageReported():
            return event.task_id, {"type": kind, "in": event.input_tokens, "out": event.output_tokens,
                                   "cost": event.cost_usd}
        case TaskCreated() | TaskUpdated():
            return event.task.id, {"type": kind}
    raise TypeError(f"not a core event: {event!r}")


async def decode(entry: JournalEntry, store: Store) -> Event | None:
    """The event an entry stands for, with the task (and intervention) read now; None when the
    task is gone or the entry is not one this version knows."""
    data, task_id = entry.data, entry.task_id
    kind = data.get("type")
    if task_id is None:
        return None
    if kind == "AgentOutput":
        return AgentOutput(task_id, str(data.get("text", "")), bool(data.get("activity")))
    if kind == "UsageReported":
        return UsageReported(task_id, int(data["in"]), int(data["out"]), float(data["cost"]))
    try:
        task = await store.get_task(task_id)
    except TaskNotFound:
        return None
    if kind == "TaskStateChanged":
        return TaskStateChanged(task, TaskState(data["from"]), TaskState(data["to"]), data["actor"], data["reason"])
    if kind in _INTERVENTION_EVENTS:
        iv = await store.get_intervention(int(data["iv"]))
        return cast(Event, _INTERVENTION_EVENTS[kind](task, iv)) if iv is not None else None
    if kind == "AttemptFailed":
        return AttemptFailed(task, int(data["attempt"]), str(data["error"]), data.get("retry_in"))
    if kind == "TaskCreated":
        return TaskCreated(task)
    if kind == "TaskUpdated":
        return TaskUpdated(task)
    return None


DROPPABLE = (AgentOutput, UsageReported)   # a summary's lines and running totals: the store keeps the rest
JOURNAL_BACKLOG = 2000                      # droppable events are not journaled while this many entries wait


class JournaledBus(EventBus):
    """publish() goes to the journal (for whichever process shows it); deliver() hands an event
    read back from the journal to this process's subscribers.

    Where this process shows the surface, its own events go to its subscribers at once and are
    journaled marked as shown (the feed skips them; its cursor still covers them, so a process
    taking the surface over after a crash shows them again): a question asked here reaches
    its owner without a round trip through the database.

    Agent output and usage totals are droppable (subscriptions drop them beyond their bound
    too): while this process shows the surface they go straight to its subscribers, never
    through the database; from another process they are journaled unless the journal is
    behind, so a flood of output slows nothing else and the journal's lag stays bounded."""

    def __init__(self, coordinator: Coordinator, max_queued: int = 10_000):
        super().__init__(max_queued)
        self.coordinator = coordinator
        self.shown_by: str | None = None   # while this process's SurfaceFeed runs: its mark on the entries shown here
        self.not_journaled = 0

    @property
    def showing(self) -> bool:
        return self.shown_by is not None

    def publish(self, event: Event) -> None:
        if isinstance(event, DROPPABLE):
            if self.showing:
                super().publish(event)
                return
            if self.coordinator.journal_backlog >= JOURNAL_BACKLOG:
                self.not_journaled += 1
                return
        task_id, data = encode(event)
        if self.shown_by is not None:
            super().publish(event)
            data["shown_by"] = self.shown_by
        self.coordinator.post_nowait(EVENT, data, task_id)

    def deliver(self, event: Event) -> None:
        super().publish(event)


class SurfaceFeed:
    """Every process's events, into this process's bus, each once, while it holds the surface.

    Its cursor is stored after the subscribers handled each batch, so the next holder of the
    board-writer lease starts where this one stopped: an event is shown at least once even when
    the holder dies (a few may be shown twice if it dies between handling and storing)."""

    def __init__(self, coordinator: Coordinator, store: Store, bus: JournaledBus):
        self.coordinator, self.store, self.bus = coordinator, store, bus
        self.cursor = self._delivered = 0
        self._mark: str | None = None   # on the entries this feed's process showed when it published them
        self._wake = asyncio.Event()
        self._task: asyncio.Task[Any] | None = None
        coordinator.subscribe(self._on_entry, {EVENT})

    async def start(self) -> None:
        stored = await self.store.kv_get(CURSOR_KEY)
        self.cursor = int(stored) if stored is not None else await self.coordinator.latest_id()
        self._delivered = self.cursor     # delivered to this process's subscribers (the cursor: also handled)
        self._wake.set()
        self.bus.shown_by = self._mark = secrets.token_hex(8)
        self._task = asyncio.create_task(self._run(), name="surface-feed")

    async def stop(self) -> None:
        self.bus.shown_by = None
        if self._task:
            self._task.cancel()
            await asyncio.gather(self._task, return_exceptions=True)
            self._task = None

    async def _handled(self) -> None:
        await self.bus.drain()
        if self._delivered != self.cursor:
            self.cursor = self._delivered
            await self.store.kv_set(CURSOR_KEY, self.cursor)

    async def _on_entry(self, entry: JournalEntry) -> None:
        self._wake.set()          # read in our own order, from our own cursor

    async def _run(self) -> None:
        while True:
            await self._wake.wait()
            self._wake.clear()
            try:
                while entries := await self.coordinator.read_since(self._delivered, {EVENT}):
                    # read together (the store makes reads at once one query), delivered in order
                    unseen = [e for e in entries if e.data.get("shown_by") != self._mark]
                    for event in await asyncio.gather(*(decode(entry, self.store) for entry in unseen)):
                        if event is not None:
                            self.bus.deliver(event)
                    self._delivered = entries[-1].id
                    if self._delivered - self.cursor >= CURSOR_EVERY:
                        await self._handled()
                # The next entries are delivered while the subscribers still handle these; the
                # cursor moves once they have (a new holder starts there: at least once).
                await self._handled()
            except asyncio.CancelledError:
                raise
            except Exception as exc:   # the database is away: the next wake-up reads again
                log.warning("could not read the events of other processes: %s", exc)
                await asyncio.sleep(1)
                self._wake.set()
