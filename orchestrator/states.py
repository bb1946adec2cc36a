"""Task states and the one table of allowed transitions."""
from __future__ import annotations

from enum import StrEnum

from .errors import TaskpinError


class TaskState(StrEnum):
    BACKLOG = "backlog"
    # Dispatched before the tasks it depends on completed: it is queued by itself when the
    # last of them completes. The board shows it in the Backlog column, with what it waits for.
    WAITING = "waiting"
    # Dispatched, waiting for a session slot (FIFO by the time it joined the queue). The
    # board shows it in the In progress column with its queue position.
    QUEUED = "queued"
    IN_PROGRESS = "in_progress"
    AWAITING_REVIEW = "awaiting_review"
    # An approval took the task and is running the repository's on-approve action (merge,
    # push). Nobody else can decide while it is here; it ends completed, or back in review.
    APPROVING = "approving"
    BLOCKED = "blocked"
    COMPLETED = "completed"
    FAILED = "failed"


S = TaskState

# (from, to) -> what moves a task along that edge. Anything not listed is refused.
TRANSITIONS: dict[tuple[TaskState, TaskState], str] = {
    (S.BACKLOG, S.QUEUED): "dispatch",
    (S.BACKLOG, S.FAILED): "cancel before dispatch",
    (S.BACKLOG, S.WAITING): "dispatched before its dependencies completed",
    (S.WAITING, S.QUEUED): "its last dependency completed, or dispatched anyway",
    (S.WAITING, S.FAILED): "cancel while waiting for dependencies",
    (S.QUEUED, S.IN_PROGRESS): "a session slot is free: the run starts",
    (S.QUEUED, S.FAILED): "cancel while waiting for a slot",
    (S.IN_PROGRESS, S.BLOCKED): "agent needs a human",
    (S.IN_PROGRESS, S.AWAITING_REVIEW): "agent finished",
    (S.IN_PROGRESS, S.FAILED): "error, timeout, budget or cancel",
    (S.IN_PROGRESS, S.QUEUED): "taskpin restarted; the session resumes when a slot is free",
    (S.BLOCKED, S.IN_PROGRESS): "human answered",
    (S.BLOCKED, S.AWAITING_REVIEW): "agent finished while a question was still open",
    (S.BLOCKED, S.FAILED): "cancel, error or intervention timeout",
    (S.BLOCKED, S.QUEUED): "taskpin restarted; the session resumes when a slot is free",
    (S.AWAITING_REVIEW, S.APPROVING): "approval claimed",
    (S.APPROVING, S.COMPLETED): "approved",
    (S.APPROVING, S.AWAITING_REVIEW): "the on-approve action failed",
    (S.AWAITING_REVIEW, S.QUEUED): "changes requested",
    (S.AWAITING_REVIEW, S.FAILED): "rejected",
    (S.FAILED, S.BACKLOG): "retry",
}

# Board column order. APPROVING, QUEUED and WAITING have no column of their own (see SHOWN_AS).
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
# States that show in another state's column: a decision being carried out, a run waiting
# for its slot.
SHOWN_AS: dict[TaskState, TaskState] = {S.APPROVING: S.AWAITING_REVIEW, S.QUEUED: S.IN_PROGRESS,
                                        S.WAITING: S.BACKLOG}


def column_of(state: TaskState) -> TaskState:
    """The board column a task in `state` shows in."""
    return SHOWN_AS.get(TaskState(state), TaskState(state))


class IllegalTransition(TaskpinError):
    """Raised for a transition the table does not allow, or a stale compare-and-set."""

    def __init__(self, task_id: int, from_state: TaskState | str, to_state: TaskState | str, detail: str = "",
                 *, by: str | None = None, by_reason: str | None = None):
        self.task_id = task_id
        self.from_state = TaskState(from_state)
        self.to_state = TaskState(to_state)
        # Who moved the task into from_state, and why (the winner of a race), when known.
        self.by = by
        self.by_reason = by_reason
        msg = f"task #{task_id}: cannot go from {self.from_state.value} to {self.to_state.value}"
        super().__init__(f"{msg} ({detail})" if detail else msg)


def is_allowed(from_state: TaskState, to_state: TaskState) -> bool:
    return (TaskState(from_state), TaskState(to_state)) in TRANSITIONS


def check_transition(task_id: int, from_state: TaskState, to_state: TaskState) -> None:
    if not is_allowed(from_state, to_state):
        raise IllegalTransition(task_id, from_state, to_state, "not an allowed transition")
