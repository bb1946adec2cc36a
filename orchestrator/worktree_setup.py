"""Worktrees that are ready to run: copied local files, setup commands, a port range per task.

The runner calls `prepare()` once its task's worktree exists and before the agent starts.
Copying and setup happen once per worktree: a marker in the worktree's own git folder says
they succeeded, so a resumed or re-reviewed task does not reinstall, and a worktree that was
removed (and made again on Retry) is set up again. A port range is held for as long as the
task's runner lives and is released when it ends.
"""
from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import shutil
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

from .config import RepoConfig, Settings
from .harness.env import agent_env
from .harness.process import spawn_agent, stop_process_group
from .ports import PortPool

if TYPE_CHECKING:
    from .logs import TaskLogs
    from .models import TaskView
    from .world import World

log = logging.getLogger(__name__)

READY_MARKER = "taskpin-ready"     # in the worktree's git dir: copy and setup succeeded
FAILURE_TAIL_LINES = 12            # the last output lines a failed setup's reason quotes
SETUP_LINE_MAX = 500
STOP_GRACE_S = 3.0


def port_env(first: int, count: int) -> dict[str, str]:
    return {"TASKPIN_PORT_BASE": str(first), "TASKPIN_PORT_COUNT": str(count), "PORT": str(first)}


# ---- the preparation -------------------------------------------------------------------------

@dataclass
class Prepared:
    env: dict[str, str] = field(default_factory=dict)     # for the agent
    warnings: list[str] = field(default_factory=list)     # shown in the task's thread
    failure: str | None = None                            # the task fails with this


def git_dir(worktree: Path) -> Path | None:
    """The worktree's own git folder (`.git` is a file naming it in a linked worktree)."""
    dot_git = worktree / ".git"
    if dot_git.is_dir():
        return dot_git
    with contextlib.suppress(OSError, ValueError):
        line = dot_git.read_text(encoding="utf-8").strip()
        if line.startswith("gitdir:"):
            path = Path(line.split(":", 1)[1].strip())
            return path if path.is_absolute() else (worktree / path).resolve()
    return None


def is_ready(worktree: Path) -> bool:
    folder = git_dir(worktree)
    return bool(folder and (folder / READY_MARKER).is_file())


def _mark_ready(worktree: Path) -> None:
    folder = git_dir(worktree)
    if folder is not None:
        (folder / READY_MARKER).write_text(f"{time.time():.0f}\n", encoding="utf-8")


def copy_files(repo: RepoConfig, worktree: Path) -> list[str]:
    """Copy each `copy` entry from the main checkout; a warning for each that is missing."""
    warnings = []
    source_root, target_root = Path(repo.path).expanduser().resolve(), worktree.resolve()
    for rel in repo.copy_files:
        source, target = source_root / rel, target_root / rel
        if not source.resolve().is_relative_to(source_root) or not target.resolve().is_relative_to(target_root):
            warnings.append(f"not copied: {rel} points outside the repository")
            continue
        if not source.exists():
            warnings.append(f"not copied: {rel} does not exist in {source_root} (the agent works without it)")
            continue
        try:
            target.parent.mkdir(parents=True, exist_ok=True)
            if source.is_dir():
                shutil.copytree(source, target, dirs_exist_ok=True, symlinks=True)
            else:
                shutil.copy2(source, target)
        except OSError as exc:
            warnings.append(f"not copied: {rel} ({exc.strerror or exc})")
    return warnings


def shown(argv: list[str]) -> str:
    return " ".join(argv)


async def run_setup(argv: list[str], *, cwd: Path, env: dict[str, str], timeout_s: float, logs: "TaskLogs",
                    task_id: int, should_stop: Callable[[], bool] = lambda: False) -> str | None:
    """Run one setup command; its output goes to the task log. None on success, else why not."""
    logs.append(task_id, f"[setup] $ {shown(argv)}")
    try:
        proc = await spawn_agent(argv, cwd=cwd, env=env, limit=1 << 20)
    except FileNotFoundError:
        return (f"setup command `{argv[0]}` was not found on PATH; install it on the taskpin host or fix "
                f"`setup` in taskpin.toml, then retry")
    except (OSError, ValueError) as exc:
        return f"setup command `{shown(argv)}` could not start ({getattr(exc, 'strerror', None) or exc}); retry after fixing it"
    assert proc.stdin and proc.stdout and proc.stderr
    proc.stdin.close()
    tail: deque[str] = deque(maxlen=FAILURE_TAIL_LINES)

    async def pump(stream: asyncio.StreamReader) -> None:
        while line := await stream.readline():
            text = line.decode("utf-8", "replace").rstrip("\n")
            logs.append(task_id, f"[setup] {text}")
            tail.append(text[:SETUP_LINE_MAX])

    readers = [asyncio.create_task(pump(proc.stdout)), asyncio.create_task(pump(proc.stderr))]
    deadline = time.monotonic() + timeout_s
    why = None
    while proc.returncode is None:
        if should_stop():
            why = "stopped"
            break
        if time.monotonic() >= deadline:
            why = f"timed out after {timeout_s:g}s (setup_timeout_s)"
            break
        with contextlib.suppress(asyncio.TimeoutError):
            await asyncio.wait_for(proc.wait(), timeout=min(0.25, max(0.01, deadline - time.monotonic())))
    if why:
        await stop_process_group(proc, STOP_GRACE_S)
    with contextlib.suppress(asyncio.TimeoutError):
        await asyncio.wait_for(asyncio.gather(*readers), timeout=2)
    for reader in readers:
        reader.cancel()
    if why is None and proc.returncode == 0:
        return None
    why = why or f"exited with {proc.returncode}"
    last = "\n".join(tail) if tail else "(no output)"
    return f"setup command `{shown(argv)}` {why}; last lines:\n{last}\nFix it and retry."


async def prepare(*, task_id: int, repo: RepoConfig, worktree: Path, settings: Settings, ports: PortPool,
                  logs: "TaskLogs", should_stop: Callable[[], bool] = lambda: False) -> Prepared:
    """Ports, copied files and setup for the task's worktree, before its agent starts."""
    prepared = Prepared()
    if repo.ports:
        first = ports.acquire(task_id)
        if first is None:
            prepared.failure = (f"no free port range: every range of {ports.size} ports from "
                                f"{settings.port_base} is held by a live task; lower TASKPIN_PORT_BASE or `ports`")
            return prepared
        prepared.env = port_env(first, repo.ports)
        logs.append(task_id, f"[taskpin] ports {first}-{first + repo.ports - 1} (PORT={first})")
    if is_ready(worktree):
        return prepared
    prepared.warnings = await asyncio.to_thread(copy_files, repo, worktree)
    for warning in prepared.warnings:
        logs.append(task_id, f"[taskpin] {warning}")
    env = agent_env(prepared.env, {"TASKPIN_TASK_ID": str(task_id), "TASKPIN_WORKDIR": str(worktree)})
    for argv in repo.setup:
        failure = await run_setup(argv, cwd=worktree, env=env, timeout_s=repo.setup_timeout_s, logs=logs,
                                  task_id=task_id, should_stop=should_stop)
        if failure:
            prepared.failure = failure
            return prepared
    await asyncio.to_thread(_mark_ready, worktree)
    return prepared


def setup_command_problems(repo: RepoConfig) -> list[tuple[int, str]]:
    """(index, what) for each setup command whose program is not on PATH (for `taskpin check`)."""
    problems = []
    for n, argv in enumerate(repo.setup):
        program = argv[0]
        if os.sep in program:
            path = Path(program).expanduser()
            path = path if path.is_absolute() else Path(repo.path).expanduser() / path
            if not (path.is_file() and os.access(path, os.X_OK)):
                problems.append((n, f"`{program}` is not an executable file"))
        elif shutil.which(program) is None:
            problems.append((n, f"`{program}` is not on PATH"))
    return problems


async def prepare_for_runner(world: "World", task: "TaskView", repo: RepoConfig, worktree: Path,
                             should_stop: Callable[[], bool]) -> Prepared:
    """prepare() for a task's runner: its warnings go to the task's thread as notices."""
    from .events import TaskNotice

    prepared = await prepare(task_id=task.id, repo=repo, worktree=Path(worktree), settings=world.settings,
                             ports=world.ports, logs=world.logs, should_stop=should_stop)
    for warning in prepared.warnings:
        world.bus.publish(TaskNotice(task, warning, warning=True))
    return prepared
