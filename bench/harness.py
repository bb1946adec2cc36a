"""Shared plumbing: the emulator with Slack's rate limits plus the real runtime, temp dirs, git
repositories, the benchmark agents, statistics and the Figure every benchmark returns."""
from __future__ import annotations

import asyncio
import contextlib
import gc
import os
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

from bot.blocks.text import epoch_seconds
from bot.emulator import SlackEmulator
from bot.runtime import Runtime
from bot.settings import SlackSettings
from orchestrator import Orchestrator, Settings, heap

from .stores import fresh_database

BOARD, OWNER = "C_BOARD", "U_OWNER"
AGENTS = Path(__file__).resolve().parent / "agents"
_T0 = time.monotonic()


@dataclass
class Figure:
    name: str
    value: float | int | None
    unit: str
    target: str | None = None      # e.g. "<= 1.5"; None: reported, no target
    baseline: float | int | None = None
    baseline_name: str | None = None
    samples: int | None = None
    notes: str = ""

    @property
    def met(self) -> bool | None:
        if not self.target or self.value is None:
            return None
        op, bound = self.target.split()
        return {"<=": self.value <= float(bound), ">=": self.value >= float(bound), "==": self.value == float(bound)}[op]


def progress(msg: str) -> None:
    print(f"  [{time.monotonic() - _T0:6.1f}s] {msg}", file=sys.stderr, flush=True)


def pct(values, q: float) -> float | None:
    """Nearest-rank percentile (q in 0..100); None without samples."""
    xs = sorted(values)
    if not xs:
        return None
    return xs[min(len(xs) - 1, max(0, int(round(q / 100 * len(xs) + 0.5)) - 1))]


def ms(seconds: float | None) -> float | None:
    return None if seconds is None else round(seconds * 1000, 1)


def epoch(dt) -> float:
    return epoch_seconds(dt)


def agent(name: str, **env) -> dict:
    """An [agents.NAME] table running bench/agents/<name>.py (stdlib only, so python -S)."""
    return {"kind": "command", "command": [sys.executable, "-S", str(AGENTS / f"{name}.py")],
            "env": {k: str(v) for k, v in env.items()}, "stop_grace_s": 1}


def make_repo(path: Path, files: int = 1) -> Path:
    path.mkdir(parents=True)
    for i in range(files):
        f = path / "src" / f"d{i // 200}" / f"f{i}.txt"
        f.parent.mkdir(parents=True, exist_ok=True)
        f.write_text(f"file {i}\n")
    (path / "README.md").write_text("# bench\n")
    git = ["git", "-c", "user.name=bench", "-c", "user.email=bench@example.com"]
    for args in (["init", "-q", "-b", "main"], ["add", "-A"], ["commit", "-q", "-m", "init"]):
        subprocess.run(git + args, cwd=path, check=True, capture_output=True)
    return path


def core_settings(root: Path, repo: Path, agents: dict, **overrides) -> Settings:
    values = dict(database_url=f"sqlite+aiosqlite:///{root / 'core.db'}", workspaces_dir=root / "worktrees",
                  log_dir=root / "logs", repos={"app": {"path": str(repo), "base_branch": "main"}},
                  agents=agents, default_repo="app", default_agent=next(iter(agents)), max_attempts=1,
                  stop_grace_s=1, max_concurrent_sessions=200)
    values.update(overrides)
    return Settings(_env_file=None, **values)


def slack_settings(emu: SlackEmulator, **overrides) -> SlackSettings:
    values = dict(SLACK_BOT_TOKEN=emu.bot_token, SLACK_APP_TOKEN=emu.app_token, SLACK_API_URL=emu.api_url,
                  TASKPIN_BOARD_CHANNEL=BOARD, TASKPIN_HTTP_HOST="127.0.0.1", TASKPIN_HTTP_PORT=0,
                  TASKPIN_BOARD_SYNC_INTERVAL_S=1.0)
    values.update({k: v for k, v in overrides.items()})
    return SlackSettings(_env_file=None, **values)


async def seed_tasks(settings: Settings, n: int) -> None:
    core = await Orchestrator.open(settings)
    try:
        for i in range(n):
            await core.create_task(prompt=f"bench task {i}", owner=OWNER)
    finally:
        await core.close()


@dataclass
class Stack:
    emu: SlackEmulator
    runtime: Runtime
    root: Path
    repo: Path
    settings: Settings

    @property
    def core(self) -> Orchestrator:
        return self.runtime.core

    def board_ts(self) -> str:
        return self.runtime.svc.board.ts


@contextlib.asynccontextmanager
async def stack(agents: dict, *, tasks: int = 0, files: int = 1, slack: dict | None = None, **core):
    """The emulator (Slack's rate limits on) and the real runtime over a fresh repo and store."""
    with tempfile.TemporaryDirectory(prefix="taskpin-bench-") as tmp:
        root = Path(tmp)
        repo = make_repo(root / "repo", files)
        async with SlackEmulator(rate_limits=True) as emu, fresh_database(root) as database_url:
            settings = core_settings(root, repo, agents, **{"database_url": database_url, **core})
            if tasks:
                await seed_tasks(settings, tasks)
            runtime = await Runtime.start(settings, slack_settings(emu, **(slack or {})))
            heap.settle()                                # as `taskpin run` does once started
            try:
                await emu.wait_socket()
                yield Stack(emu, runtime, root, repo, settings)
            finally:
                await runtime.close()


@contextlib.contextmanager
def full_collections():
    """The pauses (s) of the garbage collector's full collections while the block runs."""
    pauses: list[float] = []
    started: list[float] = []

    def note(phase: str, info: dict) -> None:
        if info["generation"] == 2:
            if phase == "start":
                started[:] = [time.perf_counter()]
            elif started:
                pauses.append(time.perf_counter() - started.pop())

    gc.callbacks.append(note)
    try:
        yield pauses
    finally:
        gc.callbacks.remove(note)


async def wait_until(predicate, timeout: float, interval: float = 0.02, *, soft: bool = False):
    """The predicate's first truthy value; at the timeout its last value if soft, else TimeoutError."""
    deadline = time.monotonic() + timeout
    while True:
        value = predicate()
        if asyncio.iscoroutine(value):
            value = await value
        if value:
            return value
        if time.monotonic() > deadline:
            if soft:
                return value
            raise TimeoutError(f"not within {timeout}s: {predicate}")
        await asyncio.sleep(interval)


async def not_started(core: Orchestrator) -> list[str]:
    """Why dispatched tasks failed before their agent ran (e.g. worktree creation errors)."""
    from orchestrator import TaskState
    return [f"#{t.id}: {t.failure_reason}" for t in await core.list_tasks(states=[TaskState.FAILED])]


def rss_mb(pid: int | None = None) -> float:
    with open(f"/proc/{pid or 'self'}/status") as fh:
        kb = next(int(line.split()[1]) for line in fh if line.startswith("VmRSS:"))
    return kb / 1024


def live_sessions(core: Orchestrator) -> int:
    return sum(1 for r in core._runners.values() if r.session is not None)


os.environ.setdefault("PYTHONDONTWRITEBYTECODE", "1")
