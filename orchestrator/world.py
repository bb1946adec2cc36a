"""What a task's run, and recovery, may do to the world: move a task along the transition
table (and say so on the bus), publish events, use the store, the task logs, the worktrees
the agents' harnesses and the per-task port ranges, read the settings, and tell the time. The engine builds one and
hands it to every TaskRunner; nothing here knows about runners or the engine."""
from __future__ import annotations

from typing import Any

from .clock import Clock, SystemClock
from .config import Settings
from .events import Event, EventBus, TaskStateChanged
from .harness.base import Harness
from .harness.registry import build_harness
from .logs import TaskLogs
from .models import TaskView
from .policies import Policies
from .ports import PortPool, port_pool
from .states import TaskState
from .store import Store
from .usage import UsageWriter
from .workspaces import Workspaces


class World:
    def __init__(self, settings: Settings, store: Store, *, clock: Clock | None = None):
        self.settings = settings
        self.store = store
        self.clock: Clock = clock or SystemClock()
        self.bus = EventBus()
        self.workspaces = Workspaces(settings.workspaces_dir)
        self.logs = TaskLogs(settings.log_dir, settings.log_retention_days)
        self.ports: PortPool = port_pool(settings)   # a distinct port range per live task
        self.usage_writer = UsageWriter(store, self.bus)   # every run's usage, in one write per interval
        self.policies = Policies(settings, store, self.logs, self.bus)   # approval-policy rules
        self._harnesses: dict[str, Harness] = {}

    def use_bus(self, bus: EventBus) -> EventBus:
        """Replace the event bus (before start): everything here that publishes uses the new one."""
        self.bus = self.usage_writer.bus = self.policies.bus = bus
        return bus

    async def transition(self, task: TaskView, to_state: TaskState, *, actor: str, reason: str,
                         **changes: Any) -> TaskView:
        """Compare-and-set from the state `task` is in; raises IllegalTransition when it moved."""
        updated = await self.store.transition(task.id, task.state, to_state, actor=actor, reason=reason, **changes)
        self.bus.publish(TaskStateChanged(updated, task.state, to_state, actor, reason))
        return updated

    def publish(self, event: Event) -> None:
        self.bus.publish(event)

    def harness(self, agent: str) -> Harness:
        """The configured agent's harness; KeyError when no agent has that name."""
        if agent not in self._harnesses:
            if agent not in self.settings.agents:
                raise KeyError(f"agent {agent!r}")
            self._harnesses[agent] = build_harness(agent, self.settings.agents[agent])
        return self._harnesses[agent]

    def retry_delay(self, failed_attempts: int) -> float:
        """The backoff before the next automatic attempt: doubling, capped."""
        base = self.settings.retry_backoff_s * (2 ** max(0, failed_attempts - 1))
        return float(min(base, self.settings.retry_backoff_max_s))
