"""A task whose worker is gone: its lease expired (the worker died, or lost the database), or it
belongs to this process's own dead predecessor. The process that took the lease over settles it,
each write fenced by the new lease:

- the lost attempt's agent is killed if it still runs on this machine (its environment carries
  the attempt's token) and the attempt ends "worker X lost";
- an approval cut short is settled as at a restart (the repository says whether it landed);
- a running or blocked task goes back into the queue, keeping its place, to be resumed by the
  next free worker when its harness can resume and its worktree is reachable from here (same
  machine, or a shared path); else it gets another attempt if its run has attempts left; else
  it fails with "worker X lost" (retryable, as any failure).
"""
from __future__ import annotations

import logging
from collections.abc import Callable
from pathlib import Path

from ..events import InterventionResolved
from ..models import InterventionStatus
from ..recovery import kill_leftover, settle_approval
from ..run_parts import RESTART_PROMPT
from ..states import LIVE_STATES, TaskState
from ..world import World

log = logging.getLogger(__name__)
S = TaskState


def lost_reason(worker: str) -> str:
    return f"worker {worker} lost"


async def attempts_this_run(world: World, task_id: int) -> int:
    """Attempts since the task last entered the queue from backlog or review (one run)."""
    started = [t.at for t in await world.store.transitions(task_id)
               if t.to_state is S.QUEUED and t.from_state in (S.BACKLOG, S.AWAITING_REVIEW)]
    since = started[-1] if started else None
    return sum(1 for a in await world.store.attempts(task_id) if since is None or a.started_at >= since)


async def settle_lost_task(world: World, task_id: int, worker: str, *, why: str | None = None,
                           reachable: Callable[[str], bool] = lambda path: Path(path).is_dir()) -> str:
    """Settle one task of a lost worker; returns what was done (for the log). `why` is the
    reason shown (default "worker X lost")."""
    store, why = world.store, why or lost_reason(worker)
    for attempt in await store.attempts(task_id):
        if attempt.ended_at is not None:
            continue
        pid, token = attempt.extra.get("pid"), attempt.extra.get("token")
        if token and kill_leftover(pid, token):
            log.info("killed the agent of task #%s left by %s (process group %s)", task_id, worker, pid)
        await store.end_attempt(attempt.extra["id"], "interrupted", why)
    task = await store.get_task(task_id)
    if task.state is S.APPROVING:
        await settle_approval(world, task)
        return "approval settled"
    if task.state not in LIVE_STATES:
        return f"nothing to do ({task.state.value})"
    for iv in await store.interventions(task.id, status=InterventionStatus.PENDING):
        resolved = await store.resolve_intervention(iv.id, InterventionStatus.CANCELLED)
        if resolved:   # the surface removes the question's buttons: its agent is gone
            world.publish(InterventionResolved(task, resolved))
    try:
        harness = world.harness(task.agent)
    except KeyError:
        harness = None
    in_reach = task.worktree is None or reachable(task.worktree)
    if harness is not None and harness.supports_resume and in_reach and await store.last_session_id(task.id):
        pending = await store.take_pending_prompt(task.id)
        await world.transition(task, S.QUEUED, actor="taskpin", reason=f"{why}; resuming on the next free worker",
                               pending_prompt=pending or RESTART_PROMPT)
        return "queued to resume"
    attempts = await attempts_this_run(world, task.id)
    if harness is not None and in_reach and attempts < world.settings.max_attempts:
        await world.transition(task, S.QUEUED, actor="taskpin",
                               reason=f"{why}; attempt {attempts + 1} of {world.settings.max_attempts} "
                                      "starts on the next free worker")
        return "queued for another attempt"
    detail = "" if in_reach else f" (its worktree {task.worktree} is not reachable from here)"
    await world.transition(task, S.FAILED, actor="taskpin", reason=why + detail, failure_reason=why + detail,
                           retryable=True)
    return "failed"
