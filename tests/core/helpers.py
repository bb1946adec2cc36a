"""Building an Orchestrator over a real git repo, real SQLite/PostgreSQL and scripted agents."""
from __future__ import annotations

import asyncio
import json
import sys
import time
from pathlib import Path

from orchestrator import Orchestrator, Settings, TaskState
from orchestrator.clock import Clock
from orchestrator.events import Event

AGENT = str(Path(__file__).resolve().parent.parent / "agents" / "scripted_agent.py")


def scripted(steps: list[dict], **options) -> dict:
    """An [agents.NAME] table running the scripted fake agent with these steps."""
    env = {"SCRIPTED_AGENT_SCRIPT": json.dumps(steps), **options.pop("env", {})}
    return {"kind": "command", "command": [sys.executable, AGENT], "env": env, "stop_grace_s": 1, **options}


def make_settings(tmp_path: Path, repo: Path, agents: dict[str, dict], *, db_url: str | None = None,
                  on_approve: str = "none", **overrides) -> Settings:
    values = dict(
        database_url=db_url or f"sqlite+aiosqlite:///{tmp_path / 'core.db'}",
        workspaces_dir=tmp_path / "worktrees",
        log_dir=tmp_path / "logs",
        repos={"app": {"path": str(repo), "base_branch": "main", "on_approve": on_approve}},
        agents=agents,
        default_repo="app",
        default_agent=next(iter(agents)),
        retry_backoff_s=0.05,
        stop_grace_s=1,
        max_attempts=1,
    )
    values.update(overrides)
    return Settings(_env_file=None, **values)


class Recorder:
    """Collects every event the core publishes, for assertions."""

    def __init__(self, core: Orchestrator):
        self.events: list[Event] = []
        self.sub = core.bus.subscribe(self._on, name="test-recorder")

    async def _on(self, event: Event) -> None:
        self.events.append(event)

    def of(self, kind) -> list:
        return [e for e in self.events if isinstance(e, kind)]


async def started(settings: Settings, *, clock: Clock | None = None) -> Orchestrator:
    core = await Orchestrator.open(settings, clock=clock)
    await core.start()
    return core


async def wait_state(core: Orchestrator, task_id: int, state: TaskState, timeout: float = 15):
    deadline = time.monotonic() + timeout
    task = await core.get_task(task_id)
    while task.state is not state:
        if time.monotonic() > deadline:
            raise AssertionError(f"task #{task_id} is {task.state.value} (reason: {task.failure_reason}), "
                                 f"expected {state.value}; log:\n" + "\n".join(core.tail_log(task_id, 30)))
        await asyncio.sleep(0.02)
        task = await core.get_task(task_id)
    return task


async def wait_until(predicate, timeout: float = 10, what: str = "condition"):
    deadline = time.monotonic() + timeout
    while True:
        value = predicate()
        if asyncio.iscoroutine(value):
            value = await value
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        await asyncio.sleep(0.02)


def pid_alive(pid: int) -> bool:
    try:
        with open(f"/proc/{pid}/stat") as f:
            return f.read().rsplit(")", 1)[1].split()[0] != "Z"
    except OSError:
        return False
