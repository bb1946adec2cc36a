"""Calls to another process through the journal: "answer question 12", "cancel task 7", "send
this message to the agent of task 3", addressed to the process that runs the task.

A call is a journal entry naming its target and carrying a fresh id; the target runs its
handler and writes a reply entry with the same id, which the caller is waiting for. Errors
travel as their type and message and are raised again in the caller as the same taskpin
error (ActionRefused, InvalidInput...), so a user sees the same message whichever process the
agent runs on. A target that does not reply in time (its process died) is an ActionRefused.
"""
from __future__ import annotations

import asyncio
import logging
import uuid
from collections.abc import Awaitable, Callable
from typing import Any

from .. import errors
from .base import Coordinator, JournalEntry

log = logging.getLogger(__name__)

CALL = "call"
REPLY = "reply"
CALL_TIMEOUT_S = 15.0

Handler = Callable[[dict[str, Any]], Awaitable[Any]]


class TargetGone(errors.ActionRefused):
    """The process a call was for did not reply: it stopped, or lost the task meanwhile."""


def _error_of(exc: BaseException) -> dict[str, Any]:
    return {"type": type(exc).__name__, "message": str(exc), "field": getattr(exc, "field", None)}


def _raise_from(error: dict[str, Any]) -> None:
    cls = getattr(errors, str(error.get("type")), None)
    message = str(error.get("message") or "the other taskpin process refused")
    if isinstance(cls, type) and issubclass(cls, errors.TaskpinError):
        try:
            exc = (cls(message, field=error["field"]) if issubclass(cls, errors.InvalidInput) and error.get("field")
                   else cls(message))
        except TypeError:    # an error whose constructor takes other arguments
            exc = errors.ActionRefused(message)
        raise exc
    raise errors.ActionRefused(message)


class Calls:
    def __init__(self, coordinator: Coordinator, *, timeout_s: float = CALL_TIMEOUT_S):
        self.coordinator = coordinator
        self.timeout_s = timeout_s
        self._handlers: dict[str, Handler] = {}
        self._waiting: dict[str, asyncio.Future[Any]] = {}
        coordinator.subscribe(self._on_entry, {CALL, REPLY})

    def handle(self, op: str, handler: Handler) -> None:
        """Run `handler(args)` for calls of `op` addressed to this process; what it returns (a
        JSON value) is the reply, what it raises is raised in the caller."""
        self._handlers[op] = handler

    async def call(self, target: str, op: str, args: dict[str, Any], *, task_id: int | None = None,
                   timeout_s: float | None = None) -> Any:
        call_id = uuid.uuid4().hex
        waiting: asyncio.Future[Any] = asyncio.get_running_loop().create_future()
        self._waiting[call_id] = waiting
        try:
            await self.coordinator.post(CALL, {"id": call_id, "target": target, "op": op, "args": args}, task_id)
            reply = await asyncio.wait_for(waiting, timeout_s or self.timeout_s)
        except TimeoutError:
            raise TargetGone(f"taskpin process {target} does not answer (it may have stopped); "
                             "try again in a minute, when another process has taken its tasks over") from None
        finally:
            self._waiting.pop(call_id, None)
        if not reply.get("ok"):
            _raise_from(reply.get("error") or {})
        return reply.get("result")

    async def _on_entry(self, entry: JournalEntry) -> None:
        data = entry.data
        if data.get("target") != self.coordinator.name:
            return
        if entry.kind == REPLY:
            waiting = self._waiting.get(str(data.get("id")))
            if waiting is not None and not waiting.done():
                waiting.set_result(data)
            return
        # A call: run it apart, so a slow handler never holds up the journal reader.
        asyncio.get_running_loop().create_task(self._run(entry), name=f"call:{data.get('op')}")

    async def _run(self, entry: JournalEntry) -> None:
        data = entry.data
        reply: dict[str, Any] = {"id": data.get("id"), "target": entry.origin}
        handler = self._handlers.get(str(data.get("op")))
        try:
            if handler is None:
                raise errors.ActionRefused(f"this taskpin process cannot {data.get('op')}")
            reply.update(ok=True, result=await handler(dict(data.get("args") or {})))
        except Exception as exc:
            if not isinstance(exc, errors.TaskpinError):
                log.exception("the call %s from %s failed", data.get("op"), entry.origin)
            reply.update(ok=False, error=_error_of(exc))
        try:
            await self.coordinator.post(REPLY, reply, entry.task_id)
        except Exception as exc:
            log.warning("could not reply to %s's call: %s", entry.origin, exc)
