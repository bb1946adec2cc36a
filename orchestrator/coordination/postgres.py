"""Any number of taskpin processes on one PostgreSQL database.

- Leases are rows of `leases`, timed by the database's clock (machines' clocks may disagree).
  Every acquisition adds one to the row's token; the fence locks the row FOR SHARE and checks
  the token, so a takeover waits for a running write and a stale holder's next write fails.
- The queue claim takes the oldest queued task with FOR UPDATE SKIP LOCKED and leases it in the
  same transaction: a claimed task always has a lease, and claimers never wait on each other.
- The journal is a table; entries are inserted under a transaction-scoped advisory lock, so
  their ids become visible in order and a reader's cursor never skips one. The NOTIFY sent with
  them carries the newest id only; readers read the rows (and poll slowly in case a
  notification was lost).
"""
from __future__ import annotations

import asyncio
import contextlib
import logging
from datetime import timedelta
from typing import Any, cast

from sqlalchemy import Table, text
from sqlalchemy.engine import Connection, make_url
from sqlalchemy.ext.asyncio import create_async_engine

from ..store import Store
from ..store.fence import Fence, LeaseLost
from ..store.tables import JournalRow, utcnow
from .base import TASK_LEASE, Claim, Coordinator, JournalEntry, Lease
from .listener import Listener

log = logging.getLogger(__name__)

CHANNEL = "taskpin_journal"
JOURNAL_LOCK = 0x7461736B6A726E   # advisory lock serializing journal inserts ("taskjrn")
JOURNAL_KEEP = timedelta(hours=1)

_ACQUIRE = text("""
    INSERT INTO leases (key, holder, token, expires_at, acquired_at)
    VALUES (:key, :holder, 1, now() + make_interval(secs => :ttl), now())
    ON CONFLICT (key) DO UPDATE
        SET holder = EXCLUDED.holder, token = leases.token + 1,
            expires_at = EXCLUDED.expires_at, acquired_at = EXCLUDED.acquired_at
        WHERE leases.holder IS NULL OR leases.expires_at <= now()
              OR (CAST(:take_own AS boolean) AND leases.holder = EXCLUDED.holder)
    RETURNING token""")
_RENEW = text("""
    UPDATE leases SET expires_at = now() + make_interval(secs => :ttl)
    WHERE key = :key AND holder = :holder AND token = :token RETURNING key""")
_RENEW_ALL = text("""
    UPDATE leases SET expires_at = now() + make_interval(secs => :ttl)
    WHERE holder = :holder AND key LIKE :prefix RETURNING key""")
_RELEASE = text("""
    UPDATE leases SET holder = NULL, expires_at = now()
    WHERE key = :key AND holder = :holder AND token = :token""")
_EXPIRED = text("""
    SELECT key, holder, token FROM leases
    WHERE key LIKE :prefix AND holder IS NOT NULL AND expires_at <= now() ORDER BY key""")
_HOLDER = text("SELECT holder, token FROM leases WHERE key = :key AND holder IS NOT NULL AND expires_at > now()")
_LIVE = text("""
    SELECT key, holder, token FROM leases
    WHERE key LIKE :prefix AND holder IS NOT NULL AND expires_at > now() ORDER BY key""")
_FENCE = text("SELECT 1 FROM leases WHERE key = :key AND holder = :holder AND token = :token FOR SHARE")
_CLAIM = text("""
    WITH next AS (
        SELECT id FROM tasks WHERE state = 'queued'
        ORDER BY queued_at, id LIMIT 1 FOR UPDATE SKIP LOCKED)
    UPDATE tasks SET state = 'in_progress', version = tasks.version + 1, worker = :holder,
                     updated_at = now(), state_changed_at = now()
    FROM next WHERE tasks.id = next.id RETURNING tasks.id""")
_AUDIT = text("""
    INSERT INTO transitions (task_id, from_state, to_state, actor, reason, at)
    VALUES (:task_id, 'queued', 'in_progress', :actor, :reason, now())""")
_TAKE = text("""
    INSERT INTO leases (key, holder, token, expires_at, acquired_at)
    VALUES (:key, :holder, 1, now() + make_interval(secs => :ttl), now())
    ON CONFLICT (key) DO UPDATE
        SET holder = EXCLUDED.holder, token = leases.token + 1,
            expires_at = EXCLUDED.expires_at, acquired_at = EXCLUDED.acquired_at
    RETURNING token""")


def asyncpg_dsn(url: str) -> str:
    """The SQLAlchemy URL (postgresql+asyncpg://...) as a plain libpq URL for asyncpg.connect."""
    return make_url(url).set(drivername="postgresql").render_as_string(hide_password=False)


def _like(prefix: str) -> str:
    return prefix.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_") + "%"


class PostgresCoordinator(Coordinator):
    shared = True

    def __init__(self, name: str, store: Store, url: str, *, poll_s: float = 5.0):
        super().__init__(name)
        self.store = store
        # Its own small pool: leases and the journal outlive the store's engine at shutdown (the
        # name lease is released after the core closed), and never wait behind the core's queries.
        self.engine = create_async_engine(url, pool_size=10, max_overflow=3, pool_pre_ping=True)
        self._closed = False
        self.poll_s = poll_s
        self.listener = Listener(asyncpg_dsn(url), CHANNEL, self._on_notify)
        self._cursor = 0
        self._wake = asyncio.Event()
        self._reader: asyncio.Task[Any] | None = None
        self._outgoing: asyncio.Queue[tuple[dict[str, Any] | None, asyncio.Future[Any] | None]] = asyncio.Queue()
        self._writer: asyncio.Task[Any] | None = None
        self.notifications = 0           # notifications received (the benchmarks and tests read it)

    # ---- life cycle ----------------------------------------------------------------------

    async def start(self) -> None:
        self._cursor = await self.latest_id()
        self._writer = asyncio.create_task(self._write_forever(), name="journal-writer")
        self._reader = asyncio.create_task(self._read_forever(), name="journal-reader")
        await self.listener.start()

    async def close(self) -> None:
        if self._closed:
            return
        self._closed = True
        await self._flush_outgoing()
        tasks = [t for t in (self._reader, self._writer) if t]
        for task in tasks:
            task.cancel()
        if tasks:
            await asyncio.wait(tasks, timeout=5)
        await asyncio.wait_for(self.listener.close(), 5)
        await self.engine.dispose()

    # ---- leases ------------------------------------------------------------------------

    async def _one(self, statement: Any, **params: Any) -> Any:
        async with self.engine.begin() as conn:
            return (await conn.execute(statement, params)).first()

    async def acquire(self, key: str, ttl_s: float, *, take_own: bool = False) -> Lease | None:
        row = await self._one(_ACQUIRE, key=key, holder=self.name, ttl=float(ttl_s), take_own=take_own)
        return Lease(key, self.name, int(row[0])) if row else None

    async def renew(self, lease: Lease, ttl_s: float) -> bool:
        return await self._one(_RENEW, key=lease.key, holder=lease.holder, token=lease.token,
                               ttl=float(ttl_s)) is not None

    async def renew_all(self, prefix: str, ttl_s: float) -> set[str]:
        async with self.engine.begin() as conn:
            rows = (await conn.execute(_RENEW_ALL, {"holder": self.name, "prefix": _like(prefix),
                                                    "ttl": float(ttl_s)})).all()
        return {row[0] for row in rows}

    async def release(self, lease: Lease) -> None:
        async with self.engine.begin() as conn:
            await conn.execute(_RELEASE, {"key": lease.key, "holder": lease.holder, "token": lease.token})

    async def expired(self, prefix: str) -> list[Lease]:
        async with self.engine.connect() as conn:
            rows = (await conn.execute(_EXPIRED, {"prefix": _like(prefix)})).all()
        return [Lease(key, holder, int(token)) for key, holder, token in rows]

    async def holder(self, key: str) -> Lease | None:
        async with self.engine.connect() as conn:
            row = (await conn.execute(_HOLDER, {"key": key})).first()
        return Lease(key, row[0], int(row[1])) if row else None

    async def live(self, prefix: str) -> list[Lease]:
        async with self.engine.connect() as conn:
            rows = (await conn.execute(_LIVE, {"prefix": _like(prefix)})).all()
        return [Lease(key, holder, int(token)) for key, holder, token in rows]

    def fence(self, lease: Lease) -> Fence:
        params = {"key": lease.key, "holder": lease.holder, "token": lease.token}

        def check(connection: Connection) -> None:
            if connection.execute(_FENCE, params).first() is None:
                raise LeaseLost(lease.key, lease.holder, lease.token)
        return check

    # ---- the queue ----------------------------------------------------------------------

    async def claim_next(self, ttl_s: float, *, actor: str = "taskpin", reason: str = "") -> Claim | None:
        async with self.engine.begin() as conn:
            row = (await conn.execute(_CLAIM, {"holder": self.name})).first()
            if row is None:
                return None
            await conn.execute(_AUDIT, {"task_id": row[0], "actor": actor, "reason": reason or f"started by {self.name}"})
            key = f"{TASK_LEASE}{row[0]}"
            token = (await conn.execute(_TAKE, {"key": key, "holder": self.name, "ttl": float(ttl_s)})).scalar_one()
        return Claim(int(row[0]), Lease(key, self.name, int(token)))

    # ---- the journal ----------------------------------------------------------------------

    @property
    def journal_backlog(self) -> int:
        return self._outgoing.qsize()

    def post_nowait(self, kind: str, data: dict[str, Any], task_id: int | None = None) -> None:
        self._outgoing.put_nowait((self._row(kind, data, task_id), None))

    async def post(self, kind: str, data: dict[str, Any], task_id: int | None = None) -> int:
        done: asyncio.Future[Any] = asyncio.get_running_loop().create_future()
        self._outgoing.put_nowait((self._row(kind, data, task_id), done))
        return int(await done)

    def _row(self, kind: str, data: dict[str, Any], task_id: int | None) -> dict[str, Any]:
        return {"origin": self.name, "kind": kind, "task_id": task_id, "data": data, "created_at": utcnow()}

    async def _write_forever(self) -> None:
        while True:
            batch = [await self._outgoing.get()]
            while not self._outgoing.empty() and len(batch) < 200:
                batch.append(self._outgoing.get_nowait())
            rows = [row for row, _ in batch if row is not None]   # None: a flush marker
            written = True
            for attempt in range(30):
                try:
                    if rows:
                        await self._insert(rows)
                    break
                except asyncio.CancelledError:
                    raise
                except Exception as exc:   # the database is away: keep the entries, try again
                    log.warning("could not write %d journal entries (%s); retrying", len(rows), exc)
                    await asyncio.sleep(min(0.2 * 2 ** attempt, 5))
            else:
                log.error("dropped %d journal entries: the database kept failing", len(rows))
                written = False
            for row, done in batch:
                if done is None or done.done():
                    continue
                if written:
                    done.set_result(row["id"] if row is not None else 0)
                else:
                    done.set_exception(RuntimeError("the journal could not be written"))

    async def _insert(self, rows: list[dict[str, Any]]) -> None:
        async with self.engine.begin() as conn:
            await conn.execute(text("SELECT pg_advisory_xact_lock(:key)"), {"key": JOURNAL_LOCK})
            table = cast(Table, JournalRow.__table__)
            result = await conn.execute(table.insert().returning(table.c.id, sort_by_parameter_order=True),
                                        [{k: v for k, v in row.items() if k != "id"} for row in rows])
            for row, (entry_id,) in zip(rows, result.all()):
                row["id"] = int(entry_id)
            await conn.execute(text("SELECT pg_notify(:channel, :payload)"),
                               {"channel": CHANNEL, "payload": str(rows[-1]["id"])})

    async def _flush_outgoing(self, timeout_s: float = 5.0) -> None:
        """On close: what was posted goes out first."""
        if self._writer is None or self._writer.done() or self._outgoing.empty():
            return
        done: asyncio.Future[Any] = asyncio.get_running_loop().create_future()
        self._outgoing.put_nowait((None, done))
        try:
            await asyncio.wait_for(done, timeout_s)
        except (TimeoutError, RuntimeError):
            log.warning("journal entries were still unwritten at shutdown")

    async def read_since(self, after_id: int, kinds: set[str] | None = None, limit: int = 500) -> list[JournalEntry]:
        table = JournalRow.__table__
        query = table.select().where(table.c.id > after_id).order_by(table.c.id).limit(limit)
        if kinds is not None:
            query = query.where(table.c.kind.in_(sorted(kinds)))
        async with self.engine.connect() as conn:
            rows = (await conn.execute(query)).all()
        return [JournalEntry(int(r.id), r.origin, r.kind, r.task_id, dict(r.data or {}), r.created_at) for r in rows]

    async def latest_id(self) -> int:
        async with self.engine.connect() as conn:
            return int((await conn.execute(text("SELECT coalesce(max(id), 0) FROM journal"))).scalar_one())

    def _on_notify(self, payload: str) -> None:
        if payload:
            self.notifications += 1
        self._wake.set()

    async def _read_forever(self) -> None:
        pruned_at = 0.0
        while True:
            with contextlib.suppress(TimeoutError):   # asyncio.timeout: see SystemClock.wait_for
                async with asyncio.timeout(self.poll_s):
                    await self._wake.wait()
            self._wake.clear()
            try:
                while entries := await self.read_since(self._cursor):
                    for entry in entries:
                        self._cursor = entry.id
                        await self._deliver(entry)
                loop_now = asyncio.get_running_loop().time()
                if loop_now - pruned_at > 600:
                    pruned_at = loop_now
                    await self._prune()
            except asyncio.CancelledError:
                raise
            except Exception as exc:   # the database is away: the next wake-up or poll reads again
                log.warning("could not read the journal: %s", exc)
                await asyncio.sleep(1)

    async def _prune(self) -> None:
        table = cast(Table, JournalRow.__table__)
        async with self.engine.begin() as conn:
            await conn.execute(table.delete().where(table.c.created_at < utcnow() - JOURNAL_KEEP))
