"""Reconcile at start: whatever a previous taskpin process left behind.

- agent processes of attempts that never ended are killed (their whole process group),
  but only when the process proves it is ours (its environment carries the attempt token);
- tasks that were running are resumed where the harness can resume, else failed with
  "interrupted by restart" (retryable);
- queued dispatches stay queued, in their order;
- an approval cut off between taking the task and finishing (state approving) is settled by
  looking at the repository: the merge (or push) landed -> completed, else back to review.
"""
from __future__ import annotations

import asyncio
import logging
import os
import signal
from datetime import datetime, timezone

from .config import OnApprove
from .events import InterventionResolved
from .models import InterventionStatus
from .runner import RESTART_PROMPT
from .states import TaskState

log = logging.getLogger(__name__)
S = TaskState
# Resumed sessions go to the head of the queue: they were running before queued tasks.
_HEAD_OF_QUEUE = datetime(1970, 1, 1, tzinfo=timezone.utc)


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


def kill_leftover(pid: int, token: str) -> bool:
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


async def recover(core) -> None:
    store = core.store
    for attempt in await store.open_attempts():
        pid, token = attempt.extra.get("pid"), attempt.extra.get("token")
        if token and kill_leftover(pid, token):
            log.info("killed leftover agent of task #%s (process group %s)", attempt.task_id, pid)
        await store.end_attempt(attempt.extra["id"], "interrupted", "taskpin restarted")

    for task in await store.list_tasks(states=[S.APPROVING]):
        await settle_approval(core, task)

    queued = set(await store.queued_task_ids())
    for task in await store.list_tasks(states=[S.IN_PROGRESS, S.BLOCKED]):
        if task.id in queued:
            continue   # it never started; it keeps its place in the queue
        for iv in await store.interventions(task.id, status=InterventionStatus.PENDING):
            resolved = await store.resolve_intervention(iv.id, InterventionStatus.CANCELLED)
            if resolved:   # the surface removes the question's buttons: its agent is gone
                core.bus.publish(InterventionResolved(task, resolved))
        can_resume = False
        try:
            can_resume = core.harness(task.agent).supports_resume and bool(await store.last_session_id(task.id))
        except KeyError:
            pass
        if can_resume:
            if task.state is S.BLOCKED:
                task = await core._transition(task, S.IN_PROGRESS, actor="taskpin", reason="resuming after restart")
            pending = await store.take_pending_prompt(task.id)
            await store.update_task(task.id, queued_at=_HEAD_OF_QUEUE, pending_prompt=pending or RESTART_PROMPT)
            log.info("task #%s will resume its session", task.id)
        else:
            await core._transition(task, S.FAILED, actor="taskpin", reason="interrupted by restart",
                                   failure_reason="interrupted by restart", retryable=True)
            log.info("task #%s failed: interrupted by restart", task.id)


async def settle_approval(core, task) -> None:
    """A task left in approving by a crash: complete it if its on-approve action landed,
    else return it to review so someone can approve again."""
    last = await core.store.last_transition(task.id)
    approver = last.actor if last else "taskpin"
    repo = core.settings.repos.get(task.repo)
    action = repo.on_approve if repo else OnApprove.NONE
    try:
        if action is OnApprove.MERGE:
            landed = await asyncio.to_thread(core.workspaces.is_merged, repo.path, task.base_branch, task.branch)
        elif action is OnApprove.PUSH:
            landed = await asyncio.to_thread(core.workspaces.is_pushed, repo.path, task.branch, repo.remote)
        elif action is OnApprove.PULL_REQUEST:
            landed = await core.pull_requests.landed(task, repo)
        else:
            landed = True   # nothing to do but record the approval
    except Exception as exc:
        log.warning("task #%s: could not check its interrupted approval: %s", task.id, exc)
        landed = False
    from .engine import approved_reason

    if landed:
        await core._transition(task, S.COMPLETED, actor=approver,
                               reason=approved_reason(action, task, repo) + " (finished after a restart)")
        log.info("task #%s: its approval had landed; completed", task.id)
    else:
        await core._transition(task, S.AWAITING_REVIEW, actor="taskpin",
                               reason=f"the approval by {approver} was interrupted by a restart before the "
                                      f"{action.value} landed; approve again")
        log.info("task #%s: its approval was interrupted; back in review", task.id)
