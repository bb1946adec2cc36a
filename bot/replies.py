"""Turning the core's refusals into one short sentence for the person who clicked."""
from __future__ import annotations

from orchestrator import ActionRefused, IllegalTransition, InvalidInput, NotAllowed, TaskNotFound, TaskState

_STATE_WORDS = {
    TaskState.BACKLOG: "in the backlog",
    TaskState.IN_PROGRESS: "already running",
    TaskState.BLOCKED: "running (waiting for an answer)",
    TaskState.AWAITING_REVIEW: "awaiting review",
    TaskState.COMPLETED: "completed",
    TaskState.FAILED: "failed",
}


def explain(exc: Exception, verb: str = "do that") -> str:
    if isinstance(exc, IllegalTransition):
        return f"Task #{exc.task_id} is {_STATE_WORDS[exc.from_state]}, so you can't {verb} it now."
    if isinstance(exc, NotAllowed):
        return exc.args[0][:1].upper() + exc.args[0][1:] + "."
    if isinstance(exc, TaskNotFound):
        return f"Task #{exc.task_id} no longer exists."
    if isinstance(exc, (InvalidInput, ActionRefused)):
        text = str(exc)
        return text[:1].upper() + text[1:]
    return "Something went wrong on taskpin's side; nothing was changed. Please try again."
