"""Fencing: every transaction a lease holder opens first proves it still holds its lease.

A task's runner sets `current_fence` (a context variable, so it covers the runner's task and the
tasks it starts, and nothing else); each session transaction begun in that context calls the
fence with its connection before any statement runs. On PostgreSQL the fence locks the lease row
FOR SHARE and checks its token: a takeover (which updates that row) waits for the write to
finish, and a write after a takeover fails with LeaseLost instead of landing.
"""
from __future__ import annotations

from collections.abc import Callable
from contextvars import ContextVar
from typing import Any

from sqlalchemy import event
from sqlalchemy.engine import Connection
from sqlalchemy.orm import Session


class LeaseLost(Exception):
    """The lease this write depends on belongs to someone else now."""

    def __init__(self, key: str, holder: str, token: int):
        self.key, self.holder, self.token = key, holder, token
        super().__init__(f"{holder} no longer holds {key} (token {token} was taken over)")


Fence = Callable[[Connection], None]
current_fence: ContextVar[Fence | None] = ContextVar("taskpin_fence", default=None)


class FencedSession(Session):
    """The store's session class: runs the current fence, if any, at the start of each transaction."""


@event.listens_for(FencedSession, "after_begin")
def _check_fence(session: Session, transaction: Any, connection: Connection) -> None:
    fence = current_fence.get()
    if fence is not None:
        fence(connection)
