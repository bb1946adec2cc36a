"""SQLite serves one taskpin process: `taskpin run` holds an exclusive lock on a file beside the
database for as long as it runs. The kernel drops the lock when the process dies (kill -9
included), so a restart never waits for a stale lock."""
from __future__ import annotations

import fcntl
import os
from pathlib import Path


class DatabaseInUse(Exception):
    pass


class SQLiteProcessLock:
    def __init__(self, database: Path):
        self.database = database
        self.path = database.with_name(database.name + ".lock")
        self._fd: int | None = None

    def acquire(self) -> None:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o644)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            holder = os.pread(fd, 64, 0).decode(errors="replace").strip()
            os.close(fd)
            who = f" (pid {holder})" if holder.isdigit() else ""
            raise DatabaseInUse(
                f"another taskpin process{who} is running on the SQLite database {self.database}; SQLite serves "
                "one process. Stop the other one, or move to PostgreSQL (TASKPIN_DATABASE_URL="
                "postgresql+asyncpg://user@host/taskpin) to run several taskpin processes") from None
        os.ftruncate(fd, 0)
        os.pwrite(fd, str(os.getpid()).encode(), 0)
        self._fd = fd

    def release(self) -> None:
        if self._fd is not None:
            os.close(self._fd)   # closing the descriptor releases the lock
            self._fd = None
