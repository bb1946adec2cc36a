"""Per-task log files: every line an agent printed, the last lines on demand, old files pruned."""
from __future__ import annotations

import logging
import os
import time
from collections import deque
from pathlib import Path
from typing import TextIO

log = logging.getLogger(__name__)


class TaskLogs:
    def __init__(self, root: Path, retention_days: float):
        self.root = Path(root).resolve()
        self.retention_s = retention_days * 86400
        self._open: dict[int, TextIO] = {}
        self._warned: set[int] = set()

    def path(self, task_id: int) -> Path:
        return self.root / f"task-{int(task_id)}.log"

    def _handle(self, task_id: int) -> TextIO:
        handle = self._open.get(task_id)
        if handle is None:
            self.root.mkdir(parents=True, exist_ok=True)
            handle = self._open[task_id] = open(self.path(task_id), "a", encoding="utf-8")  # flushed by tail() and close()
        return handle

    def open_error(self, task_id: int) -> str | None:
        """Why the task's log cannot be written, or None (the file is then open for the run)."""
        try:
            self._handle(task_id)
        except OSError as exc:
            return f"cannot write the task's log {self.path(task_id)}: {exc.strerror or exc}"
        return None

    def append(self, task_id: int, line: str) -> None:
        """Never raises: a log that cannot be written must not keep a task from ending."""
        try:
            self._handle(task_id).write(line.rstrip("\n") + "\n")
        except OSError as exc:
            if task_id not in self._warned:
                self._warned.add(task_id)
                log.warning("task #%s: cannot write its log %s: %s", task_id, self.path(task_id), exc)

    def close(self, task_id: int | None = None) -> None:
        ids = list(self._open) if task_id is None else [task_id]
        for tid in ids:
            handle = self._open.pop(tid, None)
            if handle:
                handle.close()

    def tail(self, task_id: int, lines: int = 50) -> list[str]:
        path = self.path(task_id)
        if not path.exists():
            return []
        handle = self._open.get(task_id)
        if handle:
            handle.flush()
        with open(path, "rb") as f:   # read backwards in blocks: logs can be large
            f.seek(0, os.SEEK_END)
            end = f.tell()
            block, data = 64 * 1024, b""
            while end > 0 and data.count(b"\n") <= lines:
                start = max(0, end - block)
                f.seek(start)
                data = f.read(end - start) + data
                end = start
        return [line.decode("utf-8", "replace") for line in deque(data.splitlines(), maxlen=lines)]

    def prune(self, now: float | None = None) -> int:
        """Delete log files not written for longer than the retention; returns how many."""
        if not self.root.exists():
            return 0
        cutoff = (now or time.time()) - self.retention_s
        removed = 0
        for path in self.root.glob("task-*.log"):
            task_id = path.stem.removeprefix("task-")
            if task_id.isdigit() and int(task_id) in self._open:
                continue
            if path.stat().st_mtime < cutoff:
                path.unlink(missing_ok=True)
                removed += 1
        return removed
