"""Read-only views of tasks and interventions: what the core hands to its callers."""
from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from enum import StrEnum
from typing import Any

from .states import TaskState


@dataclass(frozen=True)
class DiffSummary:
    files_changed: int
    insertions: int
    deletions: int
    files: tuple[str, ...] = ()
    commit: str | None = None

    def to_dict(self) -> dict[str, Any]:
        return {
            "files_changed": self.files_changed,
            "insertions": self.insertions,
            "deletions": self.deletions,
            "files": list(self.files),
            "commit": self.commit,
        }

    @classmethod
    def from_dict(cls, data: dict[str, Any] | None) -> "DiffSummary | None":
        if not data:
            return None
        return cls(
            files_changed=int(data.get("files_changed", 0)),
            insertions=int(data.get("insertions", 0)),
            deletions=int(data.get("deletions", 0)),
            files=tuple(data.get("files", ())),
            commit=data.get("commit"),
        )


@dataclass(frozen=True)
class TaskView:
    id: int
    title: str
    prompt: str
    owner: str
    repo: str
    agent: str
    base_branch: str
    branch: str
    state: TaskState
    version: int
    created_at: datetime
    updated_at: datetime
    state_changed_at: datetime
    started_at: datetime | None = None   # first time the current run left the queue
    finished_at: datetime | None = None
    queue_position: int | None = None    # 1-based while waiting for a session slot
    failure_reason: str | None = None
    diff: DiffSummary | None = None
    attempts: int = 0
    input_tokens: int = 0
    output_tokens: int = 0
    cost_usd: float = 0.0
    pending_interventions: int = 0
    worktree: str | None = None          # the task's worktree folder once dispatched
    depends_on: tuple[int, ...] = ()     # the tasks it waits for (state waiting until they complete)
    worker: str | None = None            # the process running it (TASKPIN_WORKER_NAME), or that last did

    @property
    def short_id(self) -> str:
        return f"#{self.id}"

    @property
    def queued(self) -> bool:
        return self.queue_position is not None


class InterventionKind(StrEnum):
    PERMISSION = "permission"
    QUESTION = "question"
    INPUT = "input"


class InterventionStatus(StrEnum):
    PENDING = "pending"
    ANSWERED = "answered"
    EXPIRED = "expired"      # intervention timeout
    CANCELLED = "cancelled"  # task cancelled or session ended first


@dataclass(frozen=True)
class Option:
    """One choice offered to the human. `kind` hints the button style: allow | deny | other."""

    id: str
    label: str
    kind: str = "other"
    description: str = ""


@dataclass(frozen=True)
class InterventionView:
    id: int
    task_id: int
    kind: InterventionKind
    prompt: str
    options: tuple[Option, ...]
    status: InterventionStatus
    created_at: datetime
    tool: str | None = None          # permission: the tool the agent wants
    detail: str | None = None        # permission: the exact command, path or URL
    multi_select: bool = False
    answer_text: str | None = None
    answer_options: tuple[str, ...] = ()
    answered_by: str | None = None
    resolved_at: datetime | None = None
    reminded_at: datetime | None = None


@dataclass(frozen=True)
class Answer:
    """A human's answer to an intervention.

    A button click picks options; a thread reply is free text. For a permission, a reply
    without an option means "deny, and tell the agent this text".
    """

    option_ids: tuple[str, ...] = ()
    text: str = ""

    @property
    def option_id(self) -> str | None:
        return self.option_ids[0] if self.option_ids else None


@dataclass(frozen=True)
class TransitionRecord:
    task_id: int
    from_state: TaskState | None
    to_state: TaskState
    actor: str
    reason: str
    at: datetime


@dataclass(frozen=True)
class AttemptView:
    task_id: int
    number: int
    started_at: datetime
    ended_at: datetime | None
    outcome: str | None
    error: str | None
    harness_session_id: str | None
    input_tokens: int = 0
    output_tokens: int = 0
    cost_usd: float = 0.0
    extra: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class PolicyRuleView:
    """An approval-policy rule added in Slack (rules from taskpin.toml are not stored)."""

    id: int
    repo: str
    task_id: int | None       # None: for every task of the repository
    effect: str               # allow | ask | deny
    target: str               # Bash(pytest -q): the rule without its effect
    by_approver: bool         # False: the task's owner's rule, which can only tighten
    added_by: str
    added_at: datetime
    intervention_id: int | None = None
    removed_by: str | None = None
    removed_at: datetime | None = None

    @property
    def text(self) -> str:
        return f"{self.effect} {self.target}"
