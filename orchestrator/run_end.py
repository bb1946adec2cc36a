"""The end of a task's run: the session stopped, its questions closed, the attempt recorded and
the task moved to awaiting_review (its work committed, its diff summarised) or failed.

Part of TaskRunner (a mixin, to keep runner.py readable).
"""
from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any

from .events import InterventionResolved
from .models import InterventionStatus, TaskView
from .run_parts import Answered, OpenQuestion, Outcome
from .states import IllegalTransition, TaskState
from .store.fence import LeaseLost
from .store.tables import utcnow

if TYPE_CHECKING:
    from .world import World

log = logging.getLogger(__name__)
S = TaskState


class RunEnding:
    """Mixed into TaskRunner: it uses the runner's world, task id, attempt, inbox and questions."""

    world: World
    task_id: int
    attempt_id: int | None
    done: asyncio.Event
    _inbox: asyncio.Queue[object]
    _questions: dict[int, OpenQuestion]
    _on_done: Callable[[Any], None] | None   # called with the TaskRunner

    async def _stop_session(self) -> None:
        raise NotImplementedError

    async def _conclude(self, outcome: Outcome) -> None:
        store = self.world.store
        try:
            await self._stop_session()
            if outcome.kind == "lost":   # the task is another worker's now: nothing here is ours to write
                return
            if outcome.kind == "shutdown":   # the task stays live; recovery resumes or fails it
                if self.attempt_id:
                    await store.end_attempt(self.attempt_id, "interrupted", "taskpin stopped")
                return
            await self._announce_unprocessed_answers()
            await self._close_interventions(InterventionStatus.EXPIRED if outcome.expired
                                            else InterventionStatus.CANCELLED)
            if self.attempt_id:
                await store.end_attempt(self.attempt_id, outcome.kind, outcome.reason or None)
            if outcome.kind == "finished":
                await self._to_review(outcome)
            else:
                await self._to_failed(outcome)
        except LeaseLost as exc:   # taken over while it ended: the new holder decides
            log.warning("task #%s: %s; its outcome (%s) is not recorded here", self.task_id, exc, outcome.kind)
        except Exception:
            log.exception("task #%s: could not record the outcome %s", self.task_id, outcome)
        finally:
            self.world.ports.release(self.task_id)
            self.world.logs.close(self.task_id)
            self.done.set()
            if self._on_done:
                self._on_done(self)

    async def _announce_unprocessed_answers(self) -> None:
        """Answers that arrived as the run ended still close their questions in the surface."""
        while not self._inbox.empty():
            item = self._inbox.get_nowait()
            if isinstance(item, Answered) and (resolved := await item.handed) is not None:
                self.world.publish(InterventionResolved(await self.world.store.get_task(self.task_id), resolved))

    async def _close_interventions(self, status: InterventionStatus) -> None:
        for iv_id in list(self._questions):
            self._questions.pop(iv_id, None)
            resolved = await self.world.store.resolve_intervention(iv_id, status)
            if resolved:
                self.world.publish(InterventionResolved(await self.world.store.get_task(self.task_id), resolved))

    async def _to_review(self, outcome: Outcome) -> None:
        world = self.world
        task = await world.store.get_task(self.task_id)
        repo = world.settings.repos[task.repo]
        try:
            await asyncio.to_thread(world.workspaces.commit_all,
                                    Path(task.worktree) if task.worktree else world.workspaces.path_for(task.id),
                                    f"{task.title}\n\ntaskpin task #{task.id}", exclude=repo.copy_files)
            diff = await asyncio.to_thread(world.workspaces.diff_summary, repo.path, task.base_branch, task.branch)
        except Exception as exc:
            await self._to_failed(Outcome("failed", f"could not commit the agent's work: {exc}"))
            return
        world.logs.append(task.id, f"[taskpin] finished: {outcome.reason}")
        # From in_progress, or from blocked when the agent finished with a question still open.
        await self._finish(task, S.AWAITING_REVIEW, actor="agent", reason=outcome.reason or "finished",
                           diff=diff.to_dict(), failure_reason=None)

    async def _to_failed(self, outcome: Outcome) -> None:
        reason = outcome.reason or outcome.kind
        self.world.logs.append(self.task_id, f"[taskpin] failed: {reason}")
        await self._finish(await self.world.store.get_task(self.task_id), S.FAILED, actor=outcome.actor,
                           reason=reason, failure_reason=reason, retryable=True)

    async def _finish(self, task: TaskView, to_state: TaskState, **changes: Any) -> None:
        """The run's last transition. Nobody else moves a running task, so one compare-and-set
        does it; a task found elsewhere (moved by hand in the database) is left where it is."""
        if task.state not in (S.IN_PROGRESS, S.BLOCKED):
            log.warning("task #%s is %s at the end of its run; left there", task.id, task.state.value)
            return
        try:
            await self.world.transition(task, to_state, finished_at=utcnow(), **changes)
        except IllegalTransition as exc:
            log.warning("task #%s: its run's outcome could not be recorded: %s", task.id, exc)
