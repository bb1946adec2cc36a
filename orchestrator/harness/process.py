"""Agent processes, shared by the adapters: spawning, stopping and watching a process group.

Every adapter that starts its agent itself (command, acp, codex) runs it as the leader of its
own process group with PR_SET_PDEATHSIG, so the agent dies with taskpin and the core can clean
up what is left by pgid. This module also reads /proc (Linux) to tell which processes are
still alive, and keeps the tail of an agent's stderr for error messages (and its task log).
"""
from __future__ import annotations

import asyncio
import contextlib
import ctypes
import ctypes.util
import logging
import os
import signal
import sys
import time
from collections import deque
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from pathlib import Path
from typing import Any

from .errors import HarnessError

log = logging.getLogger(__name__)

STDERR_TAIL_LINES = 10                # stderr lines kept for error messages
ERROR_TAIL_LINES = 5                  # ...of which this many go into an error
STDERR_LINE_MAX = 2000                # a longer stderr line is cut in the tail (not in the log)


# ---- spawning: own process group + PR_SET_PDEATHSIG ------------------------------------

_PR_SET_PDEATHSIG = 1
_libc: Any = None
if sys.platform.startswith("linux"):
    with contextlib.suppress(Exception):  # no libc via ctypes: simply no death signal
        _libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6", use_errno=True)


def _child_preexec() -> None:  # pragma: no cover - runs in the forked child
    # Runs between fork and exec: the direct child gets SIGKILL when taskpin dies, even by
    # SIGKILL. (The rest of the group is cleaned up by the core's recovery, by pgid.)
    if _libc is not None:
        _libc.prctl(_PR_SET_PDEATHSIG, signal.SIGKILL, 0, 0, 0)


async def spawn_agent(argv: Sequence[str], *, cwd: str | os.PathLike[str], env: Mapping[str, str],
                      limit: int) -> asyncio.subprocess.Process:
    """Start `argv` with piped stdin/stdout/stderr as the leader of a new process group (and
    session) that gets SIGKILL when taskpin dies. Spawn errors (FileNotFoundError, OSError,
    ValueError) are the caller's to explain."""
    return await asyncio.create_subprocess_exec(
        *argv,
        cwd=str(cwd),
        env=dict(env),
        stdin=asyncio.subprocess.PIPE,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
        start_new_session=True,
        preexec_fn=_child_preexec if _libc is not None else None,
        limit=limit,
    )


def spawn_error(exc: Exception, argv: Sequence[str], workdir: str | os.PathLike[str]) -> HarnessError:
    """What spawn_agent's FileNotFoundError, OSError or ValueError means, for the core."""
    if isinstance(exc, FileNotFoundError):
        if not Path(workdir).is_dir():
            return HarnessError(f"cannot start agent: workdir {workdir} does not exist")
        return HarnessError(f"cannot start agent: executable {argv[0]!r} not found ({exc.strerror})")
    return HarnessError(f"cannot start agent {argv[0]!r}: {exc}")


def close_stdin(proc: asyncio.subprocess.Process) -> None:
    stdin = proc.stdin
    if stdin is not None and not stdin.is_closing():
        with contextlib.suppress(Exception):
            stdin.close()


def describe_exit(code: int | None) -> str:
    """'killed by signal SIGKILL' for a negative return code, else 'exited with code N'."""
    if code is not None and code < 0:
        try:
            return f"killed by signal {signal.Signals(-code).name}"
        except ValueError:
            return f"killed by signal {-code}"
    return f"exited with code {code}"


# ---- /proc -------------------------------------------------------------------------------

def _stat_fields(pid: int | str) -> list[bytes]:
    """/proc/<pid>/stat after the command name: [state, ppid, pgrp, session, ...]."""
    with open(f"/proc/{pid}/stat", "rb") as fh:
        return fh.read().rsplit(b")", 1)[1].split()


def _all_stats() -> Iterator[tuple[int, list[bytes]]]:
    """(pid, _stat_fields) of every process; OSError when /proc cannot be listed."""
    for name in os.listdir("/proc"):
        if not name.isdigit():
            continue
        try:
            yield int(name), _stat_fields(name)
        except (OSError, IndexError):
            continue


def pid_alive(pid: int) -> bool:
    """Is `pid` a process that is not a zombie?"""
    try:
        return _stat_fields(pid)[0] != b"Z"
    except (OSError, IndexError):
        return False


def live_group_member(pgid: int) -> bool:
    """Linux: is any process of group `pgid` not a zombie? (Zombies wait for their reaper,
    which may be a lazy init in a container; they hold no resources worth waiting for.)"""
    group = str(pgid).encode()
    try:
        return any(len(f) > 2 and f[2] == group and f[0] != b"Z" for _pid, f in _all_stats())
    except OSError:
        return True


def group_alive(pgid: int) -> bool:
    """Does process group `pgid` still have a member that is not a zombie?"""
    try:
        os.killpg(pgid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return live_group_member(pgid)


def proc_table() -> dict[int, tuple[int, int, bytes, int]]:
    """pid -> (ppid, pgid, state, session id) of every process (Linux /proc)."""
    table: dict[int, tuple[int, int, bytes, int]] = {}
    with contextlib.suppress(OSError):
        for pid, fields in _all_stats():
            with contextlib.suppress(IndexError, ValueError):
                table[pid] = (int(fields[1]), int(fields[2]), fields[0], int(fields[3]))
    return table


def descendants(root: int, table: dict[int, tuple[int, int, bytes, int]] | None = None) -> set[int]:
    """Every live (non-zombie) descendant of `root`, in any process group or session."""
    table = proc_table() if table is None else table
    children: dict[int, list[int]] = {}
    for pid, (ppid, *_rest) in table.items():
        children.setdefault(ppid, []).append(pid)
    found: set[int] = set()
    stack = [root]
    while stack:
        for child in children.get(stack.pop(), ()):
            if child not in found:
                found.add(child)
                stack.append(child)
    return {p for p in found if table[p][2] != b"Z"}


def processes_with_env(marker: bytes) -> list[int]:
    """Pids (not ours) whose environment holds the line `marker` (Linux /proc)."""
    found: list[int] = []
    me = os.getpid()
    try:
        entries = os.listdir("/proc")
    except OSError:
        return found
    for name in entries:
        if not name.isdigit() or int(name) == me:
            continue
        try:
            with open(f"/proc/{name}/environ", "rb") as fh:
                if marker in fh.read().split(b"\0") and pid_alive(int(name)):
                    found.append(int(name))
        except OSError:
            continue
    return found


# ---- stopping ----------------------------------------------------------------------------

def signal_group(pgid: int, sig: int) -> None:
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(pgid, sig)


async def stop_process_group(target: asyncio.subprocess.Process | int | None, grace_s: float, *,
                             others: Callable[[], Iterable[int]] | None = None) -> None:
    """The one way taskpin stops an agent. SIGTERM the process group `target` leads (a
    Process, or the pgid of a leader someone else reaps) and `others` (processes the agent
    started outside its group), SIGKILL whatever is left after `grace_s`, reap the leader,
    then wait (up to 1 s) until none of them is alive. A cancelled stop raises CancelledError
    (the next stop finishes the job). With target None only `others` are stopped."""
    proc = target if isinstance(target, asyncio.subprocess.Process) else None
    pgid = target.pid if isinstance(target, asyncio.subprocess.Process) else target
    if pgid is not None and pgid == os.getpgrp():
        pgid = None   # never our own group

    def extra() -> set[int]:
        return set(others()) if others is not None else set()

    def alive() -> bool:
        if proc is not None and proc.returncode is None:
            return True
        return (pgid is not None and group_alive(pgid)) or any(pid_alive(pid) for pid in extra())

    def signal_all(sig: int) -> None:
        if pgid is not None:
            signal_group(pgid, sig)
        for pid in extra():
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.kill(pid, sig)

    if alive():
        signal_all(signal.SIGTERM)
        deadline = time.monotonic() + grace_s
        while alive() and time.monotonic() < deadline:  # noqa: ASYNC110 - a process group's members give no exit event to await
            await asyncio.sleep(0.05)
    # Whatever is left (the leader, children that ignored SIGTERM, late forks).
    signal_all(signal.SIGKILL)
    if proc is not None:
        await proc.wait()
    kill_deadline = time.monotonic() + 1.0   # SIGKILL is delivered asynchronously
    while alive() and time.monotonic() < kill_deadline:
        signal_all(signal.SIGKILL)
        await asyncio.sleep(0.02)


# ---- stderr ------------------------------------------------------------------------------

class AgentStderr:
    """The last lines an agent wrote to stderr, and the task log (spec.log_path) they go to."""

    def __init__(self, log_path: str | os.PathLike[str] | None, *, lines: int = STDERR_TAIL_LINES):
        self.lines: deque[str] = deque(maxlen=lines)
        self._log_file = None
        if log_path is not None:
            try:
                Path(log_path).parent.mkdir(parents=True, exist_ok=True)
                self._log_file = open(log_path, "ab")  # noqa: SIM115 - closed in close()
            except OSError as exc:
                log.warning("cannot open agent log %s: %s", log_path, exc)

    def add(self, line: str, raw: bytes | None = None) -> None:
        """One stderr line (without its newline): kept unless blank, and written to the log
        (`raw`, or the line encoded as UTF-8)."""
        if line.strip():
            self.lines.append(line if len(line) <= STDERR_LINE_MAX else line[:STDERR_LINE_MAX] + " …")
        self.write_log(line.encode("utf-8", errors="replace") if raw is None else raw)

    def write_log(self, data: bytes) -> None:
        """Append one line to the task log (if there is one)."""
        if self._log_file is not None:
            with contextlib.suppress(OSError, ValueError):
                self._log_file.write(data + b"\n")
                self._log_file.flush()

    def tail(self, count: int = ERROR_TAIL_LINES) -> str:
        return "\n".join(list(self.lines)[-count:])

    def suffix(self) -> str:
        """': <the last few stderr lines>' for an error message, or ''."""
        tail = self.tail()
        return f": {tail}" if tail else ""

    def close(self) -> None:
        if self._log_file is not None:
            with contextlib.suppress(OSError):
                self._log_file.close()
            self._log_file = None

    async def pump(self, stream: asyncio.StreamReader | None, what: str) -> None:
        """Read `stream` (the agent's stderr) line by line until EOF; an over-long line is skipped."""
        if stream is None:
            return
        try:
            while True:
                try:
                    line = await stream.readline()
                except (asyncio.LimitOverrunError, ValueError):
                    continue
                if not line:
                    return
                line = line.rstrip(b"\r\n")
                self.add(line.decode("utf-8", errors="replace"), line)
        except asyncio.CancelledError:
            raise
        except Exception:  # noqa: BLE001 - a reader bug must not hang the session
            log.exception("reading %s stderr failed", what)
