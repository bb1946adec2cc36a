"""The rules added to approval policies in Slack: add, list, remove (kept, marked removed)."""
from __future__ import annotations

from sqlalchemy import or_, select, update

from ..models import PolicyRuleView
from .repository import Store
from .results import rowcount
from .tables import PolicyRuleRow, utcnow


def _view(row: PolicyRuleRow) -> PolicyRuleView:
    return PolicyRuleView(id=row.id, repo=row.repo, task_id=row.task_id, effect=row.effect, target=row.target,
                          by_approver=bool(row.by_approver), added_by=row.added_by, added_at=row.added_at,
                          intervention_id=row.intervention_id, removed_by=row.removed_by, removed_at=row.removed_at)


async def add_rule(store: Store, *, repo: str, task_id: int | None, effect: str, target: str, by_approver: bool,
                   added_by: str, intervention_id: int | None = None) -> PolicyRuleView:
    async with store.writing() as s:
        row = PolicyRuleRow(repo=repo, task_id=task_id, effect=effect, target=target, by_approver=by_approver,
                            added_by=added_by, added_at=utcnow(), intervention_id=intervention_id)
        s.add(row)
    return _view(row)


async def active_rules(store: Store, *, repo: str | None = None, task_id: int | None = None) -> list[PolicyRuleView]:
    """Rules not removed, oldest first: with `repo`, that repository's own and (with `task_id`)
    that task's; without, every one."""
    query = select(PolicyRuleRow).where(PolicyRuleRow.removed_at.is_(None)).order_by(PolicyRuleRow.id)
    if repo is not None:
        query = query.where(PolicyRuleRow.repo == repo,
                            or_(PolicyRuleRow.task_id.is_(None), PolicyRuleRow.task_id == task_id))
    async with store.session() as s:
        return [_view(r) for r in (await s.execute(query)).scalars().all()]


async def get_rule(store: Store, rule_id: int) -> PolicyRuleView | None:
    if not (type(rule_id) is int and 0 < rule_id <= 2**31 - 1):
        return None
    async with store.session() as s:
        row = await s.get(PolicyRuleRow, rule_id)
    return _view(row) if row else None


async def remove_rule(store: Store, rule_id: int, *, removed_by: str) -> PolicyRuleView | None:
    """Mark the rule removed; None when it was removed already (someone else won)."""
    async with store.writing() as s:
        result = await s.execute(update(PolicyRuleRow)
                                 .where(PolicyRuleRow.id == rule_id, PolicyRuleRow.removed_at.is_(None))
                                 .values(removed_by=removed_by, removed_at=utcnow()))
        if rowcount(result) != 1:
            return None
    return await get_rule(store, rule_id)
