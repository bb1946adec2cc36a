"""The engine's scheduling, and its reach into the other processes of a deployment.

Part of Orchestrator (a mixin, to keep engine.py readable): the session slots of this process,
the FIFO claim (one queue across every worker on the database), the lease of each run, and the
calls that carry an answer, a cancel or a follow-up to the process whose agent it is for.
In one process (SQLite) the "other processes" part never runs: every run is local.
"""
from __future__ import annotations

import asyncio
import contextvars
import logging
from collections.abc import Awaitable
from typing import TYPE_CHECKING, Any, TypeVar

from .coordination.base import Claim, Lease
from .errors import ActionRefused
from .events import TaskStateChanged, TaskUpdated
from .models import Answer, InterventionStatus, InterventionView, TaskView
from .runner import Outcome, TaskRunner
from .states import LIVE_STATES, TaskState
from .store.fence import LeaseLost

if TYPE_CHECKING:
    from .config import Settings
    from .coordination.base import Coordinator
    from .coordination.link import Cluster
    from .events import EventBus
    from .store import Store
    from .world import World

log = logging.getLogger(__name__)
S = TaskState
T = TypeVar("T")
SLOT_FREE = "a session slot is free"
APPROVE_TIMEOUT_S = 300.0    # a merge or push run by a worker for a slack process


class Scheduling:
    """Mixed into Orchestrator: it uses the engine's settings, store, world, coordinator, cluster,
    runners and leases (no import of the engine: it is the engine)."""

    if TYPE_CHECKING:   # what the engine provides; declared here for the type checker only
        settings: Settings
        store: Store
        bus: EventBus
        world: World
        coordinator: Coordinator
        cluster: Cluster
        runs_agents: bool
        _closing: bool
        _kick_lock: asyncio.Lock
        _leases: dict[int, Lease]
        _runners: dict[int, TaskRunner]
        _runner_tasks: set[asyncio.Task[None]]

        def _require_decide(self, task: TaskView, user: str, verb: str) -> None: ...
        async def _cancelled_or_refused(self, task_id: int) -> TaskView: ...
        async def cancel(self, task_id: int, *, actor: str) -> TaskView: ...
        async def approve(self, task_id: int, *, actor: str) -> TaskView: ...
        async def answer(self, intervention_id: int, answer: Answer, *, actor: str) -> InterventionView: ...
        async def follow_up(self, task_id: int, text: str, *, actor: str) -> bool: ...
        @staticmethod
        def _normalize_answer(iv: InterventionView, answer: Answer) -> Answer: ...

    # ---- this process's slots ---------------------------------------------------------------

    async def kick(self) -> None:
        """Start queued tasks, oldest first (across every worker), while this process has free
        session slots. A process that runs no agents (role slack) starts none."""
        if self._closing or not self.runs_agents:
            return
        async with self._kick_lock:
            while len(self._runners) < self.settings.max_concurrent_sessions and not self._closing:
                claim = await self.coordinator.claim_next(self.settings.lease_ttl_s, reason=self._slot_reason())
                if claim is None:
                    return
                await self._start_claimed(claim)

    def _slot_reason(self) -> str:
        return f"{SLOT_FREE} on {self.coordinator.name}" if self.cluster.shared else SLOT_FREE

    async def _start_claimed(self, claim: Claim) -> None:
        """The claim moved the task queued -> in_progress and leased it to this process: run it,
        every write of the run fenced by that lease."""
        try:
            task = await self.store.get_task(claim.task_id)
        except Exception:
            log.exception("task #%s was claimed but could not be started here; handing it back", claim.task_id)
            await self.cluster.settle(claim.lease, self.coordinator.name,
                                      why=f"it could not start on {self.coordinator.name}")
            return
        runner = TaskRunner(self.world, task, on_done=self._runner_done)
        self._runners[task.id] = runner
        self._leases[task.id] = claim.lease
        self.cluster.hold(claim.lease)
        self.world.publish(TaskStateChanged(task, S.QUEUED, S.IN_PROGRESS, "taskpin", self._slot_reason()))
        job = asyncio.create_task(self._run_fenced(runner, claim.lease), name=f"task-{task.id}")
        self._runner_tasks.add(job)
        job.add_done_callback(self._runner_tasks.discard)

    async def _run_fenced(self, runner: TaskRunner, lease: Lease) -> None:
        self.cluster.fenced(lease)    # this task's context only: the run and what it starts
        await runner.run()

    async def _as_holder(self, lease: Lease | None, work: Awaitable[T]) -> T:
        """Run `work` (an answer, an approval: writes made for a task outside its run) fenced by
        the task's lease; the fence covers only `work`."""
        if lease is None or not self.cluster.shared:
            return await work
        try:
            with self.cluster.fencing(lease):
                return await work
        except LeaseLost:
            raise ActionRefused("another taskpin worker took this task over a moment ago; try again") from None

    def _runner_done(self, runner: TaskRunner) -> None:
        """Called from the ending run: what follows runs outside its fence (a fresh context)."""
        if self._runners.get(runner.task_id) is runner:
            del self._runners[runner.task_id]
        loop = asyncio.get_running_loop()
        if self._closing and self.cluster.shared:
            return   # the lease stays: close() hands the task over to the other workers
        lease = self._leases.pop(runner.task_id, None)
        if lease is not None:
            loop.create_task(self.cluster.release(lease), context=contextvars.Context())
        if not self._closing:
            loop.create_task(self._after_runner(), context=contextvars.Context())

    async def _after_runner(self) -> None:
        try:
            await self.kick()
            for task in await self.store.list_tasks(states=[S.QUEUED]):   # queue positions moved up
                self.bus.publish(TaskUpdated(task))
        except Exception:
            log.exception("scheduling after a finished session failed")

    async def _lease_lost(self, lease: Lease) -> None:
        """Another worker took this run's task over: stop the agent; nothing more is written."""
        if lease.task_id is None:
            return
        runner = self._runners.get(lease.task_id)
        if runner is not None and self._leases.get(lease.task_id) == lease:
            runner.request_stop(Outcome("lost", f"{lease.key} was taken over"))

    async def _hand_over(self) -> None:
        """A worker stopping cleanly: its tasks go back to the queue (or fail) at once, for the
        other workers, instead of waiting for their leases to expire."""
        for task_id, lease in list(self._leases.items()):
            self._leases.pop(task_id, None)
            try:
                await self.cluster.settle(lease, self.coordinator.name, why=f"worker {self.coordinator.name} stopped")
            except Exception as exc:
                log.warning("task #%s could not be handed over (%s); its lease expires instead", task_id, exc)

    # ---- reaching the run of a task in another process --------------------------------------

    def _handlers(self) -> dict[str, Any]:
        async def answer(args: dict[str, Any]) -> dict[str, Any]:
            given = Answer(option_ids=tuple(args.get("options") or ()), text=str(args.get("text") or ""))
            return {"iv": (await self.answer(int(args["iv"]), given, actor=str(args["actor"]))).id}

        async def cancel(args: dict[str, Any]) -> dict[str, Any]:
            return {"task": (await self.cancel(int(args["task"]), actor=str(args["actor"]))).id}

        async def follow_up(args: dict[str, Any]) -> bool:
            return await self.follow_up(int(args["task"]), str(args["text"]), actor=str(args["actor"]))

        async def approve(args: dict[str, Any]) -> dict[str, Any]:
            return {"task": (await self.approve(int(args["task"]), actor=str(args["actor"]))).id}

        return {"answer": answer, "cancel": cancel, "follow_up": follow_up, "approve": approve}

    async def _answer_elsewhere(self, intervention_id: int, answer: Answer,
                                actor: str) -> InterventionView | None:
        """The answer to a question asked by an agent in another process: validated here (the
        same refusals), handed to that process, read back once its agent has it."""
        iv = await self.store.get_intervention(intervention_id)
        if iv is None or iv.status is not InterventionStatus.PENDING or not self.cluster.shared:
            return None
        task = await self.store.get_task(iv.task_id)
        self._require_decide(task, actor, "answer for")
        holder = await self.cluster.holder(task.id)
        if holder is None or holder.holder == self.coordinator.name:
            return None
        given = self._normalize_answer(iv, answer)
        await self.cluster.call_holder(task.id, "answer", {"iv": iv.id, "options": list(given.option_ids),
                                                           "text": given.text, "actor": actor}, holder=holder)
        return await self.store.get_intervention(intervention_id)

    async def _cancel_running(self, task: TaskView, actor: str) -> TaskView:
        """Stop the run of a live task wherever it is; a live task nobody runs is a leftover,
        failed so that it can be retried."""
        for _ in range(250):
            runner = self._runners.get(task.id)
            if runner is not None:
                runner.request_stop(Outcome("cancelled", "cancelled", actor=actor))
                await asyncio.wait_for(runner.done.wait(), timeout=self.settings.stop_grace_s + 30)
                return await self._cancelled_or_refused(task.id)
            holder = await self.cluster.holder(task.id)
            if holder is None:
                break
            if holder.holder != self.coordinator.name:
                await self.cluster.call_holder(task.id, "cancel", {"task": task.id, "actor": actor}, holder=holder,
                                               timeout_s=self.settings.stop_grace_s + 30)
                return await self.store.get_task(task.id)
            await asyncio.sleep(0.02)   # claimed here a moment ago: its runner is being set up
            task = await self.store.get_task(task.id)
            if task.state not in LIVE_STATES:
                return await self._cancelled_or_refused(task.id)
        return await self.world.transition(task, S.FAILED, actor=actor, reason=f"cancelled by {actor}",
                                           failure_reason="cancelled")

    async def _follow_up_elsewhere(self, task: TaskView, text: str, actor: str) -> bool:
        holder = await self.cluster.holder(task.id) if self.cluster.shared else None
        if holder is None or holder.holder == self.coordinator.name or task.state not in LIVE_STATES:
            return False
        return bool(await self.cluster.call_holder(task.id, "follow_up",
                                                   {"task": task.id, "text": text, "actor": actor}, holder=holder))

    async def _approve_in_worker(self, task: TaskView, actor: str) -> TaskView:
        """A slack process has no repositories: a worker carries the approval out (the one that
        ran the task when it still runs: its worktree is there)."""
        result = await self.cluster.call_worker("approve", {"task": task.id, "actor": actor}, prefer=task.worker,
                                                timeout_s=APPROVE_TIMEOUT_S)
        return await self.store.get_task(int(result["task"]))

    async def _hold_for_approval(self, task_id: int) -> Lease | None:
        """While an approval runs here, its task is leased to this process: if the process dies
        half-way, the worker that takes the lease over settles the approval."""
        if not self.cluster.shared:
            return None
        lease = await self.coordinator.acquire(f"task:{task_id}", self.settings.lease_ttl_s, take_own=True)
        if lease is None:
            raise ActionRefused("this task is being handled by another taskpin process; try again in a moment")
        self.cluster.hold(lease)
        return lease
