"""The outbox: what a surface (the Slack bot) must get out, written to the store before it is sent.

The core does not know what a payload means: it keeps opaque payloads per channel and thread,
in order, until the surface says its service took them (`sent`, with the service's id for the
message in `ref`) or refused them for good (`failed`). A restart reads `pending()` and goes on.

`maybe_sent` is the crash-safety flag: the surface sets it (`attempting`) before each send and
clears it (`not_sent`) when the send surely failed. A pending row that still has it set, after a
kill -9 or a timeout, may already be in the service: the surface looks it up before resending.
"""
from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from enum import StrEnum
from typing import Any

from sqlalchemy import ColumnElement, delete, func, select, tuple_, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession

from .store import Store
from .store.batch import Batcher
from .store.results import rowcount
from .store.tables import OutboxRow, utcnow


class OutboxStatus(StrEnum):
    PENDING = "pending"
    SENT = "sent"
    FAILED = "failed"


@dataclass(frozen=True)
class OutboxItem:
    id: int
    channel: str
    thread: str                 # rows of one (channel, thread) are delivered in id order
    key: str | None             # unique when set: adding the same key again returns the first row
    kind: str                   # what it is, for logs ("thread_root", "intervention", ...)
    op: str                     # "post" or "update" (an edit of the message `parent` names)
    priority: int               # lower goes first across threads
    parent: str | None          # key of the row whose ref this one needs
    payload: dict[str, Any]
    status: OutboxStatus
    maybe_sent: bool
    attempts: int
    ref: str | None             # the service's id for the message, once sent
    error: str | None
    created_at: datetime

    @property
    def done(self) -> bool:
        return self.status is not OutboxStatus.PENDING


def _item(row: OutboxRow) -> OutboxItem:
    return OutboxItem(id=row.id, channel=row.channel, thread=row.thread, key=row.key, kind=row.kind, op=row.op,
                      priority=row.priority, parent=row.parent, payload=dict(row.payload or {}),
                      status=OutboxStatus(row.status), maybe_sent=bool(row.maybe_sent), attempts=row.attempts or 0,
                      ref=row.ref, error=row.error, created_at=row.created_at)


class Outbox:
    def __init__(self, store: Store):
        self.store = store
        # Marks (attempting, sent, failed) of messages sent at once share one transaction.
        self._updates: Batcher[tuple[int, dict[str, Any]], None] = Batcher(
            store.writing, self._update_all, name="outbox-marks", parallel=store.parallel)
        self._adds: Batcher[tuple[OutboxRow, bool], tuple[OutboxItem, bool]] = Batcher(
            store.writing, self._add_all, name="outbox-adds", parallel=store.parallel)

    async def add(self, *, channel: str, thread: str, kind: str, payload: dict[str, Any], op: str = "post",
                  priority: int = 0, key: str | None = None, parent: str | None = None,
                  coalesce: bool = False) -> tuple[OutboxItem, bool]:
        """Record a message to send; returns (the row, whether it is new). Messages recorded at
        once share one transaction.

        With a `key` already recorded, the first row is returned unchanged (an intent is recorded
        once). With `coalesce`, a new payload replaces the thread's last pending row when that
        row is of the same kind and was never tried: it still goes out in that row's place, and
        never ahead of anything added before it."""
        row = OutboxRow(channel=channel, thread=thread, key=key, kind=kind, op=op, priority=priority,
                        parent=parent, payload=payload, status=OutboxStatus.PENDING.value, maybe_sent=False,
                        attempts=0, created_at=utcnow())
        try:
            return await self._adds.submit((row, coalesce))
        except IntegrityError:        # another process recorded the same key meanwhile
            existing = await self.get(key) if key is not None else None
            if existing is None:
                raise
            return existing, False

    @staticmethod
    async def _add_all(s: AsyncSession, adds: Sequence[tuple[OutboxRow, bool]]) -> list[tuple[OutboxItem, bool]]:
        """Messages recorded at once: two reads for the whole batch (the rows their keys name,
        the last pending row of each thread that coalesces) and one insert. Within the batch,
        a row sees the rows before it as if they were already stored."""
        keys = {row.key for row, _ in adds if row.key is not None}
        by_key: dict[str, OutboxRow] = {}
        if keys:
            by_key = {r.key: r for r in (await s.execute(select(OutboxRow).where(OutboxRow.key.in_(keys)))).scalars()
                      if r.key is not None}
        pairs = {(row.channel, row.thread) for row, coalesce in adds if coalesce}
        last_pending: dict[tuple[str, str], OutboxRow] = {}
        if pairs:
            for r in (await s.execute(select(OutboxRow).where(
                    tuple_(OutboxRow.channel, OutboxRow.thread).in_(pairs),
                    OutboxRow.status == OutboxStatus.PENDING.value).order_by(OutboxRow.id))).scalars():
                last_pending[(r.channel, r.thread)] = r
        added: list[tuple[OutboxRow, bool]] = []
        for row, coalesce in adds:
            if row.key is not None and row.key in by_key:
                added.append((by_key[row.key], False))
                continue
            pair = (row.channel, row.thread)
            last = last_pending.get(pair) if coalesce else None
            if last is not None and last.kind == row.kind and not last.maybe_sent and last.attempts == 0:
                last.payload = row.payload
                added.append((last, False))
                continue
            s.add(row)
            if row.key is not None:
                by_key[row.key] = row
            if pair in pairs:
                last_pending[pair] = row
            added.append((row, True))
        await s.flush()
        return [(_item(row), new) for row, new in added]

    async def get(self, key: str) -> OutboxItem | None:
        async with self.store.session() as s:
            row = (await s.execute(select(OutboxRow).where(OutboxRow.key == key))).scalar()
        return _item(row) if row is not None else None

    async def get_by_id(self, item_id: int) -> OutboxItem | None:
        async with self.store.session() as s:
            row = await s.get(OutboxRow, item_id)
        return _item(row) if row is not None else None

    async def pending(self, channel: str | None = None) -> list[OutboxItem]:
        """Every row still to send, oldest first."""
        query = select(OutboxRow).where(OutboxRow.status == OutboxStatus.PENDING.value).order_by(OutboxRow.id)
        if channel is not None:
            query = query.where(OutboxRow.channel == channel)
        async with self.store.session() as s:
            rows = (await s.execute(query)).scalars().all()
        return [_item(r) for r in rows]

    async def counts(self) -> dict[OutboxStatus, int]:
        async with self.store.session() as s:
            rows = (await s.execute(select(OutboxRow.status, func.count()).group_by(OutboxRow.status))).all()
        return {OutboxStatus(status): n for status, n in rows}

    async def attempting(self, item_id: int) -> None:
        """About to send: from now until `not_sent` or `sent`, the message may be out there."""
        await self._set(item_id, maybe_sent=True, attempts=_ONE_MORE_ATTEMPT)

    async def not_sent(self, item_id: int, error: str) -> None:
        """The attempt surely did not reach the service; the row stays pending."""
        await self._set(item_id, maybe_sent=False, error=error)

    async def set_payload(self, item_id: int, payload: dict[str, Any]) -> None:
        await self._set(item_id, payload=payload)

    async def sent(self, item_id: int, ref: str | None, *, note: str | None = None) -> None:
        await self._set(item_id, status=OutboxStatus.SENT.value, ref=ref, maybe_sent=False, error=note,
                        done_at=utcnow())

    async def failed(self, item_id: int, error: str, *, ref: str | None = None) -> None:
        """Refused for good (the row is kept, with why). `ref` when a stand-in was sent instead."""
        await self._set(item_id, status=OutboxStatus.FAILED.value, ref=ref, maybe_sent=False, error=error,
                        done_at=utcnow())

    async def prune(self, older_than: timedelta) -> int:
        """Forget rows done longer ago than `older_than`."""
        async with self.store.writing() as s:
            result = await s.execute(delete(OutboxRow).where(OutboxRow.status != OutboxStatus.PENDING.value,
                                                             OutboxRow.done_at < utcnow() - older_than))
        return rowcount(result)

    async def _set(self, item_id: int, **values: Any) -> None:
        await self._updates.submit((item_id, values))

    @staticmethod
    async def _update_all(s: AsyncSession, changes: Sequence[tuple[int, dict[str, Any]]]) -> list[None]:
        """Marks made at once: one UPDATE for every set of rows given the same values (fifty
        messages about to be sent are one statement); a row marked twice takes its marks in order."""
        shapes: dict[tuple[tuple[str, Any], ...], tuple[dict[str, Any], list[int]]] = {}
        for item_id, values in changes:
            if any(item_id in ids for _, ids in shapes.values()):
                await _apply_marks(s, shapes)
                shapes = {}
            shapes.setdefault(_shape(values), (values, []))[1].append(item_id)
        await _apply_marks(s, shapes)
        return [None] * len(changes)


_ONE_MORE_ATTEMPT = OutboxRow.attempts + 1      # one expression object: attempting marks share a shape


def _shape(values: dict[str, Any]) -> tuple[tuple[str, Any], ...]:
    return tuple(sorted((k, id(v) if isinstance(v, ColumnElement) else repr(v)) for k, v in values.items()))


async def _apply_marks(s: AsyncSession, shapes: dict[Any, tuple[dict[str, Any], list[int]]]) -> None:
    for values, ids in shapes.values():
        await s.execute(update(OutboxRow).where(OutboxRow.id.in_(ids)).values(**values)
                        .execution_options(synchronize_session=False))
