"""Errors the public API raises. Every message is written for the person who caused it."""
from __future__ import annotations

from .states import IllegalTransition
from .store import TaskNotFound


class TaskpinError(Exception):
    pass


class NotAllowed(TaskpinError):
    """The user may not do this (not the owner, not an approver, not an allowed user)."""


class InvalidInput(TaskpinError):
    """What the user typed cannot be used; the message says what to change."""


class ActionRefused(TaskpinError):
    """The action applies but could not be carried out (a merge conflict, a failed push)."""


__all__ = ["ActionRefused", "IllegalTransition", "InvalidInput", "NotAllowed", "TaskNotFound", "TaskpinError"]
