"""The question path's one write: questions asked at once share a transaction."""
from __future__ import annotations

from collections.abc import Awaitable, Callable, Sequence
from typing import Any

from sqlalchemy import insert, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from ..models import InterventionKind, InterventionStatus, InterventionView, Option, TaskView
from ..states import TaskState
from .tables import InterventionRow, TaskRow, TransitionRow, utcnow

Views = Callable[..., Awaitable[list[TaskView]]]


def _option_from(data: dict[str, Any]) -> Option:
    return Option(id=str(data["id"]), label=str(data.get("label", data["id"])),
                  kind=str(data.get("kind", "other")), description=str(data.get("description", "")))


def intervention_view(row: InterventionRow) -> InterventionView:
    return InterventionView(
        id=row.id,
        task_id=row.task_id,
        kind=InterventionKind(row.kind),
        prompt=row.prompt,
        options=tuple(_option_from(o) for o in (row.options or [])),
        status=InterventionStatus(row.status),
        created_at=row.created_at,
        tool=row.tool,
        detail=row.detail,
        multi_select=bool(row.multi_select),
        answer_text=row.answer_text,
        answer_options=tuple(row.answer_options or ()),
        answered_by=row.answered_by,
        resolved_at=row.resolved_at,
        reminded_at=row.reminded_at,
    )


async def ask_all(s: AsyncSession, asks: Sequence[dict[str, Any]], views: Views,
                  ) -> list[tuple[InterventionView, bool, TaskView]]:
    """Questions asked at once, in one transaction of four statements however many they are:
    the questions stored, their tasks moved in_progress -> blocked where they still are (one
    compare-and-set for all), the moves audited, the tasks read back."""
    now = utcnow()
    rows = [InterventionRow(task_id=ask["task_id"], attempt=ask["attempt"], request_id=ask["request_id"],
                            kind=ask["kind"].value, prompt=ask["prompt"],
                            options=[{"id": o.id, "label": o.label, "kind": o.kind, "description": o.description}
                                     for o in ask["options"]],
                            tool=ask["tool"], detail=ask["detail"], multi_select=ask["multi_select"],
                            status=InterventionStatus.PENDING.value, answer_options=[], created_at=now)
             for ask in asks]
    s.add_all(rows)
    await s.flush()
    ids = list(dict.fromkeys(ask["task_id"] for ask in asks))
    moved = set((await s.execute(
        update(TaskRow).where(TaskRow.id.in_(ids), TaskRow.state == TaskState.IN_PROGRESS.value)
        .values(state=TaskState.BLOCKED.value, version=TaskRow.version + 1, updated_at=now, state_changed_at=now)
        .returning(TaskRow.id).execution_options(synchronize_session=False))).scalars().all())
    movers = {}     # the first question of a task that moved is the one that moved it
    for i, ask in enumerate(asks):
        if ask["task_id"] in moved and ask["task_id"] not in movers:
            movers[ask["task_id"]] = i
    if movers:
        await s.execute(insert(TransitionRow), [
            {"task_id": task_id, "from_state": TaskState.IN_PROGRESS.value, "to_state": TaskState.BLOCKED.value,
             "actor": asks[i]["actor"], "reason": asks[i]["reason"], "at": now} for task_id, i in movers.items()])
    tasks = {t.id: t for t in await views(select(TaskRow).where(TaskRow.id.in_(ids)), session=s)}
    return [(intervention_view(row), movers.get(row.task_id) == i, tasks[row.task_id]) for i, row in enumerate(rows)]


async def resolve_all(s: AsyncSession, resolves: Sequence[dict[str, Any]]) -> list[InterventionView | None]:
    """Questions closed at once, in one transaction: a compare-and-set each (pending -> its new
    status) that returns the row; None where the question was no longer pending."""
    now = utcnow()
    closed: list[InterventionView | None] = []
    for r in resolves:
        row = (await s.execute(
            update(InterventionRow)
            .where(InterventionRow.id == r["id"], InterventionRow.status == InterventionStatus.PENDING.value)
            .values(status=r["status"].value, answered_by=r["answered_by"], answer_text=r["answer_text"],
                    answer_options=list(r["answer_options"]), resolved_at=now)
            .returning(InterventionRow).execution_options(synchronize_session=False))).scalar_one_or_none()
        closed.append(intervention_view(row) if row is not None else None)
    return closed
