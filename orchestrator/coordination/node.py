"""One taskpin process among others: its role, its name, and what it holds while it runs.

On SQLite the process holds the database's lock file (a second process is refused at start).
On PostgreSQL it holds the lease `process:NAME` (a second live process with the same name is
refused; a restart under the same name waits for its dead predecessor's lease to expire), and
the core's bus writes to the journal, so that the process holding the board sees every event.
"""
from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable
from enum import StrEnum

from ..check import sqlite_file
from ..config import Settings
from ..engine import Orchestrator
from .base import BOARD_WRITER, PROCESS_LEASE, Coordinator, Lease, default_worker_name
from .leadership import Leadership
from .relay import JournaledBus, SurfaceFeed
from .sqlite_lock import DatabaseInUse, SQLiteProcessLock

log = logging.getLogger(__name__)

PROCESS_TTL_S = 10.0


class Role(StrEnum):
    ALL = "all"          # everything in one process
    SLACK = "slack"      # Slack events, commands, the board and threads; no agents
    WORKER = "worker"    # agents; no Slack

    @property
    def runs_agents(self) -> bool:
        return self is not Role.SLACK

    @property
    def serves_slack(self) -> bool:
        return self is not Role.WORKER


class Node:
    def __init__(self, core: Orchestrator, coordinator: Coordinator, role: Role,
                 lock: SQLiteProcessLock | None, process: Leadership | None):
        self.core, self.coordinator, self.role = core, coordinator, role
        self._lock, self._process = lock, process

    @property
    def name(self) -> str:
        return self.coordinator.name

    @classmethod
    async def open(cls, settings: Settings, role: Role | str = Role.ALL) -> "Node":
        from . import open_coordinator

        role = Role(role)
        name = settings.worker_name or default_worker_name()
        lock = None
        database = sqlite_file(settings.database_url)
        if database is not None:
            if role is not Role.ALL:
                raise DatabaseInUse(f"`--role {role.value}` needs PostgreSQL: SQLite serves one taskpin process")
            lock = SQLiteProcessLock(database)
            lock.acquire()
        core = None
        try:
            core = await Orchestrator.open(settings)
            coordinator = open_coordinator(core.store, settings.database_url, name)
            await coordinator.start()
            process = None
            if coordinator.shared:
                process = await _hold_name(coordinator)
            # Before anyone subscribes: on a shared database the bus writes to the journal.
            core.use_coordination(coordinator, runs_agents=role.runs_agents,
                                  bus=JournaledBus(coordinator) if coordinator.shared else None)
            return cls(core, coordinator, role, lock, process)
        except BaseException:
            if core is not None:
                await core.store.close()
            if lock is not None:
                lock.release()
            raise

    def board_writer(self, *, on_gain: Callable[[Lease], Awaitable[None]], on_loss: Callable[[], Awaitable[None]],
                     ttl_s: float = 6.0, interval_s: float = 1.5) -> Leadership:
        """The role of the one process that shows everything (the board, the task threads):
        `on_gain` when this process takes it, `on_loss` when it gives it up. On a shared
        database, while it holds the role, every process's events reach this core's bus
        subscribers (from where the previous holder stopped)."""
        bus = self.core.bus
        feed = SurfaceFeed(self.coordinator, self.core.store, bus) if isinstance(bus, JournaledBus) else None

        async def gained(lease: Lease) -> None:
            await on_gain(lease)
            if feed is not None:
                await feed.start()

        async def lost() -> None:
            if feed is not None:
                await feed.stop()
            await on_loss()
        return Leadership(self.coordinator, BOARD_WRITER, on_gain=gained, on_loss=lost, ttl_s=ttl_s,
                          interval_s=interval_s)

    async def close(self) -> None:
        """After the core closed: the name, the journal, the lock file."""
        if self._process is not None:
            await self._process.close()
        await self.coordinator.close()
        if self._lock is not None:
            self._lock.release()


async def _hold_name(coordinator: Coordinator) -> Leadership:
    """The lease on this process's name, renewed while it runs."""
    async def gained(_lease: Lease) -> None:
        pass

    async def lost() -> None:
        if process.closing:
            return
        log.error("this process's name %s was taken by another process: give each taskpin process its own "
                  "TASKPIN_WORKER_NAME", coordinator.name)

    process = Leadership(coordinator, PROCESS_LEASE + coordinator.name, on_gain=gained, on_loss=lost,
                         ttl_s=PROCESS_TTL_S, interval_s=PROCESS_TTL_S / 4, take_own=False)
    loop = asyncio.get_running_loop()
    deadline = loop.time() + PROCESS_TTL_S + 2
    await process.start()
    while not process.holding:
        if loop.time() > deadline:
            await process.close()
            raise DatabaseInUse(f"another taskpin process named {coordinator.name!r} is running on this database; "
                                "give each process its own TASKPIN_WORKER_NAME")
        log.info("waiting for the previous process named %s to expire", coordinator.name)
        await asyncio.sleep(1)
    return process
