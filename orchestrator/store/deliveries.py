"""Claims of inbound deliveries (the dedupe of Slack's retries), batched: the claims that arrive
while a write is under way go into the next transaction together, as one insert-if-absent.

Fifty people answering at once are fifty claims; one by one on SQLite's single writer, the
fiftieth would wait for the forty-nine before it. Batched, it waits for one transaction.
"""
from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from contextlib import AbstractAsyncContextManager
from typing import Any

from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.ext.asyncio import AsyncSession

from .tables import DeliveryRow, utcnow

Writing = Callable[..., AbstractAsyncContextManager[AsyncSession]]


class DeliveryClaims:
    def __init__(self, writing: Writing, dialect: str):
        self._writing = writing
        self._insert = pg_insert if dialect == "postgresql" else sqlite_insert
        self._waiting: list[tuple[str, asyncio.Future[bool]]] = []
        self._flushing: asyncio.Task[None] | None = None

    def claim(self, key: str) -> Awaitable[bool]:
        """True for exactly one claim of `key`, across restarts and processes (a unique row)."""
        claimed: asyncio.Future[bool] = asyncio.get_running_loop().create_future()
        self._waiting.append((key[:255], claimed))
        if self._flushing is None or self._flushing.done():
            self._flushing = asyncio.get_running_loop().create_task(self._flush(), name="delivery-claims")
        return claimed

    async def _flush(self) -> None:
        while self._waiting:
            batch: list[tuple[str, asyncio.Future[bool]]] = []
            try:
                async with self._writing(urgent=True) as s:
                    batch, self._waiting = self._waiting, []      # all that came while waiting for the turn
                    keys = list(dict.fromkeys(key for key, _ in batch))
                    now = utcnow()
                    rows: Any = await s.execute(self._insert(DeliveryRow).values([{"key": k, "seen_at": now} for k in keys])
                                                .on_conflict_do_nothing(index_elements=["key"])
                                                .returning(DeliveryRow.key))
                    new = set(rows.scalars().all())
            except Exception as exc:
                for _, claimed in batch or self._waiting:
                    if not claimed.done():
                        claimed.set_exception(exc)
                if not batch:
                    self._waiting = []
                continue
            for key, claimed in batch:          # a key twice in one batch: its first claim wins
                if not claimed.done():
                    claimed.set_result(key in new)
                new.discard(key)
