"""Turning the core's refusals into one short sentence for the person who clicked."""
from __future__ import annotations

from orchestrator import ActionRefused, IllegalTransition, InvalidInput, NotAllowed, TaskNotFound, TaskState

from .blocks.text import escape_mrkdwn, user_mention

_STATE_WORDS = {
    TaskState.BACKLOG: "in the backlog",
    TaskState.WAITING: "waiting for the tasks it depends on (Dispatch anyway starts it now)",
    TaskState.QUEUED: "already dispatched (waiting for a session slot)",
    TaskState.IN_PROGRESS: "already running",
    TaskState.BLOCKED: "running (waiting for an answer)",
    TaskState.AWAITING_REVIEW: "awaiting review",
    TaskState.APPROVING: "being approved",
    TaskState.COMPLETED: "completed",
    TaskState.FAILED: "failed",
}
# What the winner of a race did, judged by the state it left and the reason it recorded.
_DONE_WORDS = (
    (TaskState.APPROVING, "", "is being approved"),
    (TaskState.COMPLETED, "", "was already approved"),
    (TaskState.FAILED, "rejected", "was already rejected"),
    (TaskState.FAILED, "cancelled", "was already cancelled"),
    (TaskState.QUEUED, "changes requested", "was already sent back for changes"),
    (TaskState.QUEUED, "dispatched", "was already dispatched"),
    (TaskState.BACKLOG, "retry", "was already put back in the backlog"),
)


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


def explain_mrkdwn(exc: Exception, verb: str = "do that") -> str:
    """explain() as mrkdwn, escaped; a lost race names who won it: "already rejected by @ana"."""
    if isinstance(exc, IllegalTransition) and exc.by and user_mention(exc.by).startswith("<@"):
        reason = (exc.by_reason or "").lower()
        done = next((words for state, needle, words in _DONE_WORDS
                     if state is exc.from_state and needle in reason), None)
        if done:
            return f"Task #{exc.task_id} {done} by {user_mention(exc.by)}, so you can't {escape_mrkdwn(verb)} it now."
    return escape_mrkdwn(explain(exc, verb))
