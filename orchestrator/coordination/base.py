"""What several taskpin processes on one database agree through: leases with fencing tokens,
a FIFO claim of queued tasks, and a journal of entries that cross processes.

Two implementations: `InProcessCoordinator` (one process: SQLite, or PostgreSQL without peers,
as the test suite runs the core) and `PostgresCoordinator` (any number of processes on one
PostgreSQL database: leases in a table, the journal announced with LISTEN/NOTIFY).
"""
from __future__ import annotations

import logging
import os
import socket
from abc import ABC, abstractmethod
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from ..store.fence import Fence

log = logging.getLogger(__name__)

# Lease keys. A running task is leased by the worker running it; one slack process holds the board.
TASK_LEASE = "task:"             # + task id
BOARD_WRITER = "board-writer"
PROCESS_LEASE = "process:"       # + worker name: one live process per name
WORKER_LEASE = "worker:"         # + worker name: held by every process that runs agents

# Journal kinds.
EVENT = "event"                  # a core event (the surface turns it into Slack messages)
CONTROL = "control"              # a command for the process running a task (answer, cancel...)


def default_worker_name() -> str:
    """Host name and pid: unique per machine and process, readable on a card."""
    return f"{socket.gethostname()}-{os.getpid()}"


@dataclass(frozen=True)
class Lease:
    key: str
    holder: str
    token: int        # grows by one on every acquisition of `key`, by anyone

    @property
    def task_id(self) -> int | None:
        return int(self.key[len(TASK_LEASE):]) if self.key.startswith(TASK_LEASE) else None


@dataclass(frozen=True)
class Claim:
    """A task taken off the queue, with the lease its worker holds while it runs."""

    task_id: int
    lease: Lease


@dataclass(frozen=True)
class JournalEntry:
    id: int
    origin: str                  # the worker name of the process that wrote it
    kind: str
    task_id: int | None
    data: dict[str, Any] = field(default_factory=dict)
    created_at: datetime | None = None


Handler = Callable[[JournalEntry], Awaitable[None]]


class Coordinator(ABC):
    """The operations the core and the surface coordinate with. `name` is this process's
    TASKPIN_WORKER_NAME; `shared` says whether other processes may be on the database."""

    shared: bool = False

    def __init__(self, name: str):
        self.name = name
        self._handlers: list[tuple[Handler, frozenset[str]]] = []

    async def start(self) -> None:  # noqa: B027 - optional hook: the in-process coordinator needs none
        """Connect (for PostgreSQL: the LISTEN connection) and start reading the journal."""

    async def close(self) -> None:  # noqa: B027 - optional hook: the in-process coordinator needs none
        """Stop reading; leases still held expire on their own (or are released by their owners)."""

    # ---- leases ------------------------------------------------------------------------

    @abstractmethod
    async def acquire(self, key: str, ttl_s: float, *, take_own: bool = False) -> Lease | None:
        """Take `key` when nobody holds it or its holder's lease expired; None when it is held.
        With `take_own`, also when this process's name holds it: names are unique among live
        processes (see node.py), so that holder is a dead predecessor of the same name."""

    @abstractmethod
    async def renew(self, lease: Lease, ttl_s: float) -> bool:
        """Extend a lease; False when it was taken over (the holder must stop acting on it)."""

    @abstractmethod
    async def renew_all(self, prefix: str, ttl_s: float) -> set[str]:
        """One heartbeat for every lease this process holds under `prefix`; returns the keys
        still held, so a caller learns which ones it lost."""

    @abstractmethod
    async def release(self, lease: Lease) -> None:
        """Give a lease up (no-op when it was taken over meanwhile)."""

    @abstractmethod
    async def expired(self, prefix: str) -> list[Lease]:
        """Leases under `prefix` whose holder stopped renewing them: what a survivor takes over."""

    @abstractmethod
    async def holder(self, key: str) -> Lease | None:
        """Who holds `key` now; None when nobody does or the holder's lease expired."""

    @abstractmethod
    async def live(self, prefix: str) -> list[Lease]:
        """The unexpired leases under `prefix` (e.g. every running worker's `worker:` lease)."""

    @abstractmethod
    def fence(self, lease: Lease) -> Fence:
        """A check for `orchestrator.store.fence.current_fence`: raises LeaseLost in any
        transaction begun after `lease` was taken over."""

    # ---- the queue ----------------------------------------------------------------------

    @abstractmethod
    async def claim_next(self, ttl_s: float, *, actor: str = "taskpin", reason: str = "") -> Claim | None:
        """Take the oldest queued task (FIFO across all workers) from queued to in_progress
        (audited as `actor`, `reason`) and lease it, in one step: exactly one worker gets each
        task. None when the queue is empty. The caller publishes the state change."""

    # ---- the journal --------------------------------------------------------------------

    def subscribe(self, handler: Handler, kinds: set[str] | frozenset[str]) -> None:
        """Call `handler` for every journal entry of these kinds written from now on, in id order."""
        self._handlers.append((handler, frozenset(kinds)))

    @abstractmethod
    def post_nowait(self, kind: str, data: dict[str, Any], task_id: int | None = None) -> None:
        """Append an entry, in order with this process's other entries (written in the background)."""

    @abstractmethod
    async def post(self, kind: str, data: dict[str, Any], task_id: int | None = None) -> int:
        """Append an entry and wait until it is stored; returns its id."""

    @property
    def journal_backlog(self) -> int:
        """Entries posted here and not yet stored."""
        return 0

    @abstractmethod
    async def read_since(self, after_id: int, kinds: set[str] | None = None, limit: int = 500) -> list[JournalEntry]:
        """Stored entries after `after_id`, oldest first (catching up after a missed notification)."""

    @abstractmethod
    async def latest_id(self) -> int:
        """The id of the newest stored entry (0 when there is none)."""

    async def _deliver(self, entry: JournalEntry) -> None:
        for handler, kinds in list(self._handlers):
            if entry.kind in kinds:
                try:
                    await handler(entry)
                except Exception:   # one bad handler never stops the others or the reader
                    log.exception("journal handler failed on entry #%s (%s)", entry.id, entry.kind)
