"""Errors the public API raises. Every message is written for the person who caused it.

Everything the core refuses is a TaskpinError: a surface catches that one class, shows its
message, and treats anything else as a bug. IllegalTransition lives beside the transition
table (orchestrator.states) and is a TaskpinError too."""
from __future__ import annotations


class TaskpinError(Exception):
    """The root of everything the core refuses."""


class NotAllowed(TaskpinError):
    """The user may not do this (not the owner, not an approver, not an allowed user)."""


class InvalidInput(TaskpinError):
    """What the user typed cannot be used; the message says what to change.

    `field` names the input it is about: the keyword argument of the core method that was
    called (create_task: "prompt", "title", "repo", "agent", "base_branch"; request_changes:
    "feedback"; answer: "answer"), so a form can put the message next to that input."""

    def __init__(self, message: str, *, field: str | None = None):
        super().__init__(message)
        self.field = field


class ActionRefused(TaskpinError):
    """The action applies but could not be carried out (a merge conflict, a failed push,
    an answer the agent could not be given)."""


class TaskNotFound(TaskpinError, LookupError):
    def __init__(self, task_id: int):
        self.task_id = task_id
        super().__init__(f"there is no task #{task_id}")


__all__ = ["ActionRefused", "InvalidInput", "NotAllowed", "TaskNotFound", "TaskpinError"]
