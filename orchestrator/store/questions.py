"""The question path's one write: questions asked at once share a transaction."""
from __future__ import annotations

from collections.abc import Awaitable, Callable, Sequence
from typing import Any

from sqlalchemy import select, update
from sqlalchemy.ext.asyncio import AsyncSession

from ..models import InterventionKind, InterventionStatus, InterventionView, Option, TaskView
from ..states import TaskState
from .results import rowcount
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
    """Questions asked at once, in one transaction: each stored, its task moved in_progress ->
    blocked if it still is (a compare-and-set, audited), then the tasks read back."""
    now = utcnow()
    asked = []
    for ask in asks:
        task_id = ask["task_id"]
        row = InterventionRow(task_id=task_id, attempt=ask["attempt"], request_id=ask["request_id"],
                              kind=ask["kind"].value, prompt=ask["prompt"],
                              options=[{"id": o.id, "label": o.label, "kind": o.kind, "description": o.description}
                                       for o in ask["options"]],
                              tool=ask["tool"], detail=ask["detail"],
                              multi_select=ask["multi_select"], status=InterventionStatus.PENDING.value,
                              answer_options=[], created_at=now)
        s.add(row)
        moved = rowcount(await s.execute(
            update(TaskRow).where(TaskRow.id == task_id, TaskRow.state == TaskState.IN_PROGRESS.value)
            .values(state=TaskState.BLOCKED.value, version=TaskRow.version + 1, updated_at=now,
                    state_changed_at=now).execution_options(synchronize_session=False))) == 1
        if moved:
            s.add(TransitionRow(task_id=task_id, from_state=TaskState.IN_PROGRESS.value,
                                to_state=TaskState.BLOCKED.value, actor=ask["actor"], reason=ask["reason"], at=now))
        asked.append((row, moved))
    await s.flush()
    ids = {ask["task_id"] for ask in asks}
    tasks = {t.id: t for t in await views(select(TaskRow).where(TaskRow.id.in_(ids)), session=s)}
    return [(intervention_view(row), moved, tasks[row.task_id]) for row, moved in asked]
