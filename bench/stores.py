"""Which store the benchmarks run on, a fresh database per stack, and a meter of store round trips.

`python3 -m bench` uses a new SQLite file per stack; `--database-url postgresql+asyncpg://user@host/db`
creates a new database on that server for each stack (through the URL's own database, which must
exist, e.g. `postgres`) and drops it afterwards.
"""
from __future__ import annotations

import contextlib
import uuid
from collections import Counter
from pathlib import Path

from sqlalchemy import event
from sqlalchemy.engine import make_url
from sqlalchemy.ext.asyncio import create_async_engine

SERVER_URL: str | None = None     # None: SQLite; else a PostgreSQL server URL (set by bench.__main__)


def store_name() -> str:
    return "sqlite" if SERVER_URL is None else make_url(SERVER_URL).get_backend_name()


def check_server_url(url: str) -> str | None:
    """Why this URL cannot be used for the benchmarks, or None."""
    try:
        parsed = make_url(url)
    except Exception as exc:  # noqa: BLE001 - any parse failure is a bad URL
        return f"{url!r} is not a database URL ({exc})"
    if parsed.get_backend_name() != "postgresql" or parsed.get_driver_name() != "asyncpg":
        return f"--database-url takes a postgresql+asyncpg:// URL, not {parsed.drivername}://"
    return None


async def unreachable() -> str | None:
    """Why the PostgreSQL server cannot be used (one line, with the fix), or None."""
    if SERVER_URL is None:
        return None
    engine = create_async_engine(SERVER_URL, isolation_level="AUTOCOMMIT")
    try:
        async with engine.connect() as conn:
            await conn.exec_driver_sql("SELECT 1")
    except Exception as exc:  # noqa: BLE001 - any failure: say which and how to fix it
        where = make_url(SERVER_URL).render_as_string(hide_password=True)
        return (f"cannot use {where}: {type(exc).__name__}: {str(exc).splitlines()[0] if str(exc) else ''}; "
                "start PostgreSQL or pass the URL of a database that exists (e.g. .../postgres)")
    finally:
        await engine.dispose()
    return None


@contextlib.asynccontextmanager
async def fresh_database(root: Path):
    """A database URL nobody else uses: a SQLite file under `root`, or a new PostgreSQL database."""
    if SERVER_URL is None:
        yield f"sqlite+aiosqlite:///{root / 'core.db'}"
        return
    server = make_url(SERVER_URL)
    name = f"taskpin_bench_{uuid.uuid4().hex[:12]}"
    admin = create_async_engine(server, isolation_level="AUTOCOMMIT")
    try:
        async with admin.connect() as conn:
            await conn.exec_driver_sql(f'CREATE DATABASE "{name}"')
        yield server.set(database=name).render_as_string(hide_password=False)
    finally:
        try:
            async with admin.connect() as conn:
                await conn.exec_driver_sql(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        finally:
            await admin.dispose()


class StoreMeter:
    """Counts what the store sends the database: statements (each one round trip) and transactions
    (each commit is one more), by the statement's first words, through SQLAlchemy's engine events."""

    def __init__(self, engine):
        self.sync_engine = engine.sync_engine
        self.statements = 0
        self.commits = 0
        self.kinds: Counter[str] = Counter()
        event.listen(self.sync_engine, "before_cursor_execute", self._statement)
        event.listen(self.sync_engine, "commit", self._commit)

    def _statement(self, _conn, _cursor, statement, _params, _context, _executemany) -> None:
        self.statements += 1
        words = statement.split()
        table = next((w for i, w in enumerate(words) if i and words[i - 1].upper() in ("FROM", "UPDATE", "INTO")), "")
        self.kinds[f"{words[0].upper() if words else '?'} {table}".strip()] += 1

    def _commit(self, _conn) -> None:
        self.commits += 1

    def snapshot(self) -> tuple[int, int, Counter]:
        return self.statements, self.commits, Counter(self.kinds)

    def close(self) -> None:
        event.remove(self.sync_engine, "before_cursor_execute", self._statement)
        event.remove(self.sync_engine, "commit", self._commit)
