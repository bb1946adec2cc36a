"""Claims of inbound deliveries (the dedupe of Slack's retries), batched: the claims that arrive
while a write is under way go into the next transaction together, as one insert-if-absent."""
from __future__ import annotations

from collections.abc import Awaitable, Sequence
from typing import Any

from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.ext.asyncio import AsyncSession

from .batch import Batcher, Writing
from .tables import DeliveryRow, utcnow


class DeliveryClaims:
    def __init__(self, writing: Writing, dialect: str, *, parallel: int = 1):
        self._insert = pg_insert if dialect == "postgresql" else sqlite_insert
        self._batcher: Batcher[str, bool] = Batcher(writing, self._claim_all, urgent=True, name="delivery-claims",
                                                    parallel=parallel)

    def claim(self, key: str) -> Awaitable[bool]:
        """True for exactly one claim of `key`, across restarts and processes (a unique row)."""
        return self._batcher.submit(key[:255])

    async def _claim_all(self, s: AsyncSession, keys: Sequence[str]) -> list[bool]:
        now = utcnow()
        rows: Any = await s.execute(self._insert(DeliveryRow)
                                    .values([{"key": k, "seen_at": now} for k in dict.fromkeys(keys)])
                                    .on_conflict_do_nothing(index_elements=["key"])
                                    .returning(DeliveryRow.key))
        new = set(rows.scalars().all())
        claimed = []
        for key in keys:                  # a key twice in one batch: its first claim wins
            claimed.append(key in new)
            new.discard(key)
        return claimed
