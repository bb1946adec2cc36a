"""Several taskpin processes on one database: leases with fencing tokens, the FIFO claim of
queued tasks, the board-writer lease and the journal of what crosses processes."""
from __future__ import annotations

from ..store import Store
from ..store.fence import LeaseLost, current_fence
from .base import (
    BOARD_WRITER,
    CONTROL,
    EVENT,
    PROCESS_LEASE,
    TASK_LEASE,
    WORKER_LEASE,
    Claim,
    Coordinator,
    JournalEntry,
    Lease,
    default_worker_name,
)
from .inprocess import InProcessCoordinator
from .leadership import Leadership
from .relay import JournaledBus, SurfaceFeed
from .sqlite_lock import DatabaseInUse, SQLiteProcessLock


def open_coordinator(store: Store, url: str, name: str) -> Coordinator:
    """PostgreSQL: the shared implementation (other processes may join at any time); else the
    in-process one (SQLite serves one process)."""
    if store.engine.dialect.name == "postgresql":
        from .postgres import PostgresCoordinator

        return PostgresCoordinator(name, store, url)
    return InProcessCoordinator(name, store)


__all__ = [
    "BOARD_WRITER", "CONTROL", "EVENT", "PROCESS_LEASE", "TASK_LEASE", "Claim", "Coordinator", "DatabaseInUse",
    "InProcessCoordinator", "JournalEntry", "JournaledBus", "Lease", "LeaseLost", "Leadership", "SQLiteProcessLock",
    "SurfaceFeed", "WORKER_LEASE", "current_fence", "default_worker_name", "open_coordinator",
]
