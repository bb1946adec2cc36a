"""Workflow notes in task threads. Approval-policy decisions, summarised quietly: the core
reports each request a rule answered (PolicyDecided); this collects them and writes one message
per task once `interval_s` has passed since the first of a burst, never one per decision (each
decision is in the store and the task log already; this is the human-readable digest). And a
failed dependency (DependencyFailed), at once, with Dispatch anyway and Cancel under it."""
from __future__ import annotations

import asyncio
import logging
from collections import defaultdict

from orchestrator import DependencyFailed, Orchestrator, PolicyDecided, Subscription, TaskView

from .blocks.thread import dependency_failed_message, policy_summary_message
from .threads import TaskThreads

log = logging.getLogger(__name__)


class WorkflowNotes:
    def __init__(self, core: Orchestrator, threads: TaskThreads, *, interval_s: float = 10.0):
        self.core, self.threads, self.interval_s = core, threads, interval_s
        self._waiting: dict[int, list[PolicyDecided]] = defaultdict(list)
        self._timers: dict[int, asyncio.Task[None]] = {}
        self._sub: Subscription | None = None

    async def start(self) -> None:
        self._sub = self.core.bus.subscribe(self._on_event, name="workflow-notes")

    async def close(self) -> None:
        """Write what is still waiting (into the outbox, which keeps it), then stop."""
        if self._sub:
            await self.core.bus.unsubscribe(self._sub)
        for timer in list(self._timers.values()):
            timer.cancel()
        for task_id in list(self._waiting):
            await self._flush(task_id)

    async def _on_event(self, event) -> None:
        if isinstance(event, DependencyFailed):
            await self.threads.note(event.task, dependency_failed_message(event.task, event.dependency),
                                    "dependency")
            return
        if not isinstance(event, PolicyDecided):
            return
        self._waiting[event.task.id].append(event)
        if event.task.id not in self._timers:
            self._timers[event.task.id] = asyncio.create_task(self._flush_later(event.task.id),
                                                              name=f"policy-notes:{event.task.id}")

    async def _flush_later(self, task_id: int) -> None:
        await asyncio.sleep(self.interval_s)
        self._timers.pop(task_id, None)
        try:
            await self._flush(task_id)
        except Exception:   # the decisions are in the store and the task log; only the digest is lost
            log.exception("could not summarise the policy decisions of task #%s", task_id)

    async def _flush(self, task_id: int) -> None:
        decided = self._waiting.pop(task_id, [])
        if not decided:
            return
        task: TaskView = decided[-1].task
        rows = [(e.effect, e.intervention.tool, e.intervention.detail, e.rule, e.source) for e in decided]
        await self.threads.note(task, policy_summary_message(task, rows), "policy")
