"""LISTEN on a dedicated asyncpg connection, reconnecting forever.

A notification only says "something new"; the reader then reads the rows. So a notification lost
while the connection was down costs nothing: every (re)connect wakes the reader, and a slow
poll wakes it anyway. A connection that died silently (a machine or network gone) is found by a
periodic SELECT 1 with a timeout.
"""
from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from typing import Any

import asyncpg

log = logging.getLogger(__name__)


class Listener:
    def __init__(self, dsn: str, channel: str, on_notify: Callable[[str], None], *,
                 probe_s: float = 5.0, retry_s: float = 1.0, retry_max_s: float = 10.0):
        self.dsn, self.channel, self.on_notify = dsn, channel, on_notify
        self.probe_s, self.retry_s, self.retry_max_s = probe_s, retry_s, retry_max_s
        self.connected = asyncio.Event()
        self.connects = 0                 # successful connections so far (a reconnect adds one)
        self._conn: asyncpg.Connection | None = None
        self._task: asyncio.Task[Any] | None = None

    async def start(self, timeout_s: float = 15.0) -> None:
        self._task = asyncio.create_task(self._run(), name=f"listen:{self.channel}")
        await asyncio.wait_for(self.connected.wait(), timeout_s)

    async def close(self) -> None:
        if self._task:
            self._task.cancel()
            await asyncio.gather(self._task, return_exceptions=True)
            self._task = None

    async def drop_connection(self) -> None:
        """Close the current connection as a failure would (tests: the reconnect path)."""
        if self._conn is not None and not self._conn.is_closed():
            self._conn.terminate()

    async def _run(self) -> None:
        delay = self.retry_s
        while True:
            conn = None
            try:
                conn = await asyncpg.connect(self.dsn, timeout=10)
                lost = asyncio.Event()
                conn.add_termination_listener(lambda _c, lost=lost: lost.set())
                await conn.add_listener(self.channel, self._notified)
                self._conn = conn
                self.connects += 1
                self.connected.set()
                self.on_notify("")        # catch up on whatever was written while we were away
                delay = self.retry_s
                while not lost.is_set():
                    try:
                        async with asyncio.timeout(self.probe_s):   # see SystemClock.wait_for
                            await lost.wait()
                    except TimeoutError:
                        await conn.fetchval("SELECT 1", timeout=self.probe_s)
                log.warning("the LISTEN connection to PostgreSQL closed; reconnecting")
            except asyncio.CancelledError:
                raise
            except Exception as exc:
                log.warning("LISTEN connection to PostgreSQL failed (%s); retrying in %.0fs",
                            str(exc).splitlines()[0] if str(exc) else type(exc).__name__, delay)
            finally:
                self.connected.clear()
                self._conn = None
                if conn is not None and not conn.is_closed():
                    conn.terminate()
            await asyncio.sleep(delay)
            delay = min(delay * 2, self.retry_max_s)

    def _notified(self, _conn: Any, _pid: Any, _channel: Any, payload: str) -> None:
        self.on_notify(payload)
