"""State changes made at once share one transaction: each a compare-and-set on the task's
state (and version, when given), audited, then the moved tasks read back in one query."""
from __future__ import annotations

from collections import Counter
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import insert, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from ..errors import TaskNotFound
from ..models import TaskView
from ..states import IllegalTransition, TaskState
from .results import rowcount
from .tables import TaskRow, TransitionRow, utcnow

Views = Callable[..., Awaitable[list[TaskView]]]


@dataclass(frozen=True)
class Move:
    task_id: int
    from_state: TaskState
    to_state: TaskState
    actor: str
    reason: str
    expected_version: int | None = None
    changes: dict[str, Any] = field(default_factory=dict)


async def move_all(s: AsyncSession, moves: Sequence[Move], views: Views) -> list[TaskView | Exception]:
    """One result per move: the task as the move left it, or the IllegalTransition (or
    TaskNotFound) of a move whose compare-and-set found the task elsewhere."""
    now = utcnow()
    later = Counter(move.task_id for move in moves)
    outcome: list[TaskView | Exception | int] = []
    audit: list[dict[str, Any]] = []
    for move in moves:
        later[move.task_id] -= 1
        values = {"state": move.to_state.value, "version": TaskRow.version + 1, "updated_at": now,
                  "state_changed_at": now, **move.changes}
        query = update(TaskRow).where(TaskRow.id == move.task_id, TaskRow.state == move.from_state.value)
        if move.expected_version is not None:
            query = query.where(TaskRow.version == move.expected_version)
        result = await s.execute(query.values(**values).execution_options(synchronize_session=False))
        if rowcount(result) != 1:
            outcome.append(await _refusal(s, move, audit))
            continue
        audit.append({"task_id": move.task_id, "from_state": move.from_state.value, "to_state": move.to_state.value,
                      "actor": move.actor, "reason": move.reason, "at": now})
        if later[move.task_id]:       # the same task moves again in this batch: read it as this move left it
            outcome.append((await views(select(TaskRow).where(TaskRow.id == move.task_id), session=s))[0])
        else:
            outcome.append(move.task_id)
    if audit:       # one statement for the batch's audit rows (in move order: ids follow it)
        await s.execute(insert(TransitionRow), audit)
    ids = {o for o in outcome if isinstance(o, int)}
    tasks = {t.id: t for t in await views(select(TaskRow).where(TaskRow.id.in_(ids)), session=s)} if ids else {}
    return [tasks[o] if isinstance(o, int) else o for o in outcome]


async def _refusal(s: AsyncSession, move: Move, audit: list[dict[str, Any]]) -> Exception:
    """Who moved the task first: an earlier move of this batch, else the audit log."""
    current = (await s.execute(select(TaskRow.state).where(TaskRow.id == move.task_id))).scalar()
    if current is None:
        return TaskNotFound(move.task_id)
    mine = [(a["actor"], a["reason"]) for a in audit if a["task_id"] == move.task_id]
    last = mine[-1] if mine else (await s.execute(select(TransitionRow.actor, TransitionRow.reason)
                                                  .where(TransitionRow.task_id == move.task_id)
                                                  .order_by(TransitionRow.id.desc()).limit(1))).first()
    return IllegalTransition(move.task_id, current, move.to_state,
                             f"it is {current}, not {move.from_state.value}" if current != move.from_state.value
                             else "it changed meanwhile",
                             by=last[0] if last else None, by_reason=last[1] if last else None)
