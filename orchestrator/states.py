"""Task states and the one table of allowed transitions."""
from __future__ import annotations

from enum import StrEnum


class TaskState(StrEnum):
    BACKLOG = "backlog"
    IN_PROGRESS = "in_progress"
    AWAITING_REVIEW = "awaiting_review"
    BLOCKED = "blocked"
    COMPLETED = "completed"
    FAILED = "failed"


S = TaskState

# (from, to) -> what moves a task along that edge. Anything not listed is refused.
TRANSITIONS: dict[tuple[TaskState, TaskState], str] = {
    (S.BACKLOG, S.IN_PROGRESS): "dispatch",
    (S.BACKLOG, S.FAILED): "cancel before dispatch",
    (S.IN_PROGRESS, S.BLOCKED): "agent needs a human",
    (S.IN_PROGRESS, S.AWAITING_REVIEW): "agent finished",
    (S.IN_PROGRESS, S.FAILED): "error, timeout, budget or cancel",
    (S.BLOCKED, S.IN_PROGRESS): "human answered",
    (S.BLOCKED, S.FAILED): "cancel or intervention timeout",
    (S.AWAITING_REVIEW, S.COMPLETED): "approved",
    (S.AWAITING_REVIEW, S.IN_PROGRESS): "changes requested",
    (S.AWAITING_REVIEW, S.FAILED): "rejected",
    (S.FAILED, S.BACKLOG): "retry",
}

# Board column order.
STATE_ORDER: tuple[TaskState, ...] = (
    S.BACKLOG,
    S.IN_PROGRESS,
    S.BLOCKED,
    S.AWAITING_REVIEW,
    S.COMPLETED,
    S.FAILED,
)

# A live session may exist only in these states.
LIVE_STATES = frozenset({S.IN_PROGRESS, S.BLOCKED})
TERMINAL_STATES = frozenset({S.COMPLETED})


class IllegalTransition(Exception):
    """Raised for a transition the table does not allow, or a stale compare-and-set."""

    def __init__(self, task_id: int, from_state: TaskState | str, to_state: TaskState | str, detail: str = ""):
        self.task_id = task_id
        self.from_state = TaskState(from_state)
        self.to_state = TaskState(to_state)
        msg = f"task #{task_id}: cannot go from {self.from_state.value} to {self.to_state.value}"
        super().__init__(f"{msg} ({detail})" if detail else msg)


def is_allowed(from_state: TaskState, to_state: TaskState) -> bool:
    return (TaskState(from_state), TaskState(to_state)) in TRANSITIONS


def check_transition(task_id: int, from_state: TaskState, to_state: TaskState) -> None:
    if not is_allowed(from_state, to_state):
        raise IllegalTransition(task_id, from_state, to_state, "not an allowed transition")
