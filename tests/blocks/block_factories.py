"""Factories for TaskView / InterventionView used by the Block Kit renderer tests.

A uniquely named module (not conftest) so `from block_factories import ...` cannot pick up
another directory's conftest."""
from __future__ import annotations

from datetime import UTC, datetime, timedelta

from orchestrator.models import (
    DiffSummary,
    InterventionKind,
    InterventionStatus,
    InterventionView,
    Option,
    TaskView,
)
from orchestrator.states import STATE_ORDER, TaskState

NOW = datetime(2025, 3, 4, 12, 30, 15, tzinfo=UTC)
NASTY_TITLE = "*bold* _it_ ~strike~ `code` ```fence``` <!channel> <@U123> <!here> @channel &amp; & < > <https://evil.example|click>"


def build_task(task_id: int = 1, state: TaskState = TaskState.BACKLOG, **overrides) -> TaskView:
    changed = NOW - timedelta(minutes=task_id % 97, seconds=task_id % 7)
    fields = dict(
        id=task_id,
        title=f"Task number {task_id}",
        prompt="do the thing",
        owner=f"U{task_id % 5:03d}OWNER",
        repo="taskpin",
        agent="claude-code",
        base_branch="main",
        branch=f"taskpin/{task_id}-task",
        state=state,
        version=1,
        created_at=changed - timedelta(hours=1),
        updated_at=changed,
        state_changed_at=changed,
        started_at=changed if state in (TaskState.IN_PROGRESS, TaskState.BLOCKED) else None,
        cost_usd=0.1234 * (task_id % 4),
    )
    if state == TaskState.AWAITING_REVIEW:
        fields["diff"] = DiffSummary(
            files_changed=5, insertions=120, deletions=30,
            files=("src/app.py", "src/login_view.py", "tests/test_login.py", "README.md", "docs/x.md"),
        )
    if state == TaskState.FAILED:
        fields["failure_reason"] = "session timeout after 3600s"
        fields["finished_at"] = changed
    if state == TaskState.COMPLETED:
        fields["finished_at"] = changed
    if state == TaskState.BLOCKED:
        fields["pending_interventions"] = 1 + task_id % 3
    fields.update(overrides)
    return TaskView(**fields)


def build_tasks(count: int, *, nasty_every: int = 0) -> list[TaskView]:
    """``count`` tasks spread over every state; some queued; optionally some nasty titles."""
    tasks = []
    for task_id in range(1, count + 1):
        state = STATE_ORDER[task_id % len(STATE_ORDER)]
        overrides = {}
        if state in (TaskState.BACKLOG, TaskState.IN_PROGRESS) and task_id % 4 == 0:
            overrides["queue_position"] = task_id // 4
        if nasty_every and task_id % nasty_every == 0:
            overrides["title"] = NASTY_TITLE
        tasks.append(build_task(task_id, state, **overrides))
    return tasks


def build_intervention(
    intervention_id: int = 7,
    task_id: int = 1,
    kind: InterventionKind = InterventionKind.QUESTION,
    options: tuple[Option, ...] = (),
    **overrides,
) -> InterventionView:
    fields = dict(
        id=intervention_id,
        task_id=task_id,
        kind=kind,
        prompt="Which database should I use?",
        options=options,
        status=InterventionStatus.PENDING,
        created_at=NOW - timedelta(minutes=20),
    )
    fields.update(overrides)
    return InterventionView(**fields)
