"""Reconcile at start: whatever a previous taskpin process left behind.

- agent processes of attempts that never ended are killed (their whole process group),
  but only when the process proves it is ours (its environment carries the attempt token);
- tasks that were running are queued again where the harness can resume their session (they
  keep their place: ahead of tasks queued after them), else failed with "interrupted by
  restart" (retryable);
- queued tasks stay queued, in their order;
- an approval cut off between taking the task and finishing (state approving) is settled by
  looking at the repository: the merge (or push) landed -> completed, else back to review.
"""
from __future__ import annotations

import logging
import os
import signal

from .approval import approval_landed, approved_reason, on_approve_of
from .events import InterventionResolved
from .models import InterventionStatus, TaskView
from .run_parts import RESTART_PROMPT
from .states import LIVE_STATES, TaskState
from .world import World

log = logging.getLogger(__name__)
S = TaskState


def process_is_ours(pid: int, token: str) -> bool:
    try:
        with open(f"/proc/{pid}/environ", "rb") as f:
            return f"TASKPIN_ATTEMPT_TOKEN={token}".encode() in f.read().split(b"\0")
    except OSError:
        return False


def kill_group(pid: int) -> bool:
    try:
        os.killpg(pid, signal.SIGKILL)
        return True
    except ProcessLookupError:
        return False
    except PermissionError:
        log.warning("no permission to stop leftover agent process group %s", pid)
        return False


def _processes_with_token(token: str) -> list[int]:
    """Every live process whose environment carries this attempt's token: the agent and
    whatever it started, even in process groups of their own (Claude Code runs each Bash
    command in a new group)."""
    found = []
    for entry in os.listdir("/proc"):
        if entry.isdigit() and int(entry) != os.getpid() and process_is_ours(int(entry), token):
            found.append(int(entry))
    return found


def kill_leftover(pid: int | None, token: str) -> bool:
    """Kill a previous run's agent: its process group, and every process carrying its token."""
    killed = False
    for member in _processes_with_token(token):
        try:
            os.kill(member, signal.SIGKILL)
            killed = True
        except ProcessLookupError:
            pass
    if killed and pid:
        kill_group(pid)
    return killed


async def recover(world: World) -> None:
    store = world.store
    for attempt in await store.open_attempts():
        pid, token = attempt.extra.get("pid"), attempt.extra.get("token")
        if token and kill_leftover(pid, token):
            log.info("killed leftover agent of task #%s (process group %s)", attempt.task_id, pid)
        await store.end_attempt(attempt.extra["id"], "interrupted", "taskpin restarted")

    for task in await store.list_tasks(states=[S.APPROVING]):
        await settle_approval(world, task)

    for task in await store.list_tasks(states=LIVE_STATES):
        await _requeue_or_fail(world, task)


async def _requeue_or_fail(world: World, task: TaskView) -> None:
    store = world.store
    for iv in await store.interventions(task.id, status=InterventionStatus.PENDING):
        resolved = await store.resolve_intervention(iv.id, InterventionStatus.CANCELLED)
        if resolved:   # the surface removes the question's buttons: its agent is gone
            world.publish(InterventionResolved(task, resolved))
    try:
        can_resume = world.harness(task.agent).supports_resume and bool(await store.last_session_id(task.id))
    except KeyError:
        can_resume = False
    if can_resume:
        pending = await store.take_pending_prompt(task.id)
        await world.transition(task, S.QUEUED, actor="taskpin", reason="resuming after restart",
                               pending_prompt=pending or RESTART_PROMPT)
        log.info("task #%s will resume its session", task.id)
    else:
        await world.transition(task, S.FAILED, actor="taskpin", reason="interrupted by restart",
                               failure_reason="interrupted by restart", retryable=True)
        log.info("task #%s failed: interrupted by restart", task.id)


async def settle_approval(world: World, task: TaskView) -> None:
    """A task left in approving by a crash: complete it if its on-approve action landed,
    else return it to review so someone can approve again."""
    last = await world.store.last_transition(task.id)
    approver = last.actor if last else "taskpin"
    repo = world.settings.repos.get(task.repo)
    action = on_approve_of(repo)
    try:
        landed = await approval_landed(world, task, repo)
    except Exception as exc:
        log.warning("task #%s: could not check its interrupted approval: %s", task.id, exc)
        landed = False
    if landed:
        await world.transition(task, S.COMPLETED, actor=approver,
                               reason=approved_reason(action, task, repo) + " (finished after a restart)")
        log.info("task #%s: its approval had landed; completed", task.id)
    else:
        await world.transition(task, S.AWAITING_REVIEW, actor="taskpin",
                               reason=f"the approval by {approver} was interrupted by a restart before the "
                                      f"{action.value} landed; approve again")
        log.info("task #%s: its approval was interrupted; back in review", task.id)
