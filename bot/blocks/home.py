"""The Home tab: the viewer's own tasks first, then everyone else's, a page at a time."""
from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import datetime

from orchestrator.models import TaskView
from orchestrator.states import STATE_ORDER

from ..ids import ActionId, make_action_id
from .board import NO_URLS, order_tasks
from .card import render_card
from .kit import Block, actions, button, context, header, section
from .waiting import Waiting, home_waiting_blocks

HOME_TITLE = "taskpin"
# 3 blocks per card at most: 25 cards + 8 blocks of chrome stays under the 100-block limit.
CARDS_PER_PAGE = 25


def render_home(
    tasks: Sequence[TaskView],
    *,
    viewer: str,
    now: datetime,
    page: int = 0,
    thread_urls: Mapping[int, str] = NO_URLS,
    pull_request_urls: Mapping[int, str] = NO_URLS,
    waiting: Sequence[Waiting] = (),
) -> dict:
    """A ``home`` view. Every task appears on exactly one page; ``page`` is clamped."""
    ordered = home_order(tasks, viewer)
    page_count = max(1, -(-len(ordered) // CARDS_PER_PAGE))
    page = min(max(page, 0), page_count - 1)
    start = page * CARDS_PER_PAGE
    blocks = [
        header(HOME_TITLE, block_id="home_header"),
        actions(
            [button("New agent task", action_id=make_action_id(ActionId.OPEN_CREATE_MODAL), style="primary")],
            block_id="home_actions",
        ),
        context(_counts(tasks, viewer), block_id="home_summary"),
        *home_waiting_blocks(waiting, thread_urls),   # the viewer's pending questions, with answer buttons
    ]
    if not ordered:
        blocks.append(section("No tasks yet.", block_id="home_empty"))
    mine_count = sum(1 for task in ordered if task.owner == viewer)
    previous_group = None
    for position, task in enumerate(ordered[start : start + CARDS_PER_PAGE], start=start):
        group = "mine" if position < mine_count else "others"
        if group != previous_group:
            group_start = 0 if group == "mine" else mine_count
            continued = position != group_start
            blocks.append(_group_title(group, mine_count, len(ordered) - mine_count, continued=continued))
            previous_group = group
        blocks += render_card(task, now=now, thread_url=thread_urls.get(task.id),
                              pull_request_url=pull_request_urls.get(task.id))
    if page_count > 1:
        blocks += _pager(page, page_count, len(ordered))
    return {"type": "home", "blocks": blocks}


def home_order(tasks: Sequence[TaskView], viewer: str) -> list[TaskView]:
    """The viewer's tasks, then the others; each part in board order (state, then column order)."""
    columns = order_tasks(tasks)
    board_order = [task for state in STATE_ORDER for task in columns[state]]
    return [t for t in board_order if t.owner == viewer] + [t for t in board_order if t.owner != viewer]


def _counts(tasks: Sequence[TaskView], viewer: str) -> str:
    mine = [task for task in tasks if task.owner == viewer]
    waiting = sum(1 for task in mine if task.pending_interventions)
    text = f"{len(tasks)} tasks, {len(mine)} yours"
    if waiting:
        text += f" · *{waiting} waiting for your answer*"
    return text


def _group_title(group: str, mine_count: int, others_count: int, *, continued: bool) -> Block:
    title = f"*Your tasks* ({mine_count})" if group == "mine" else f"*Everyone else's tasks* ({others_count})"
    if continued:
        title += " — continued"
    return section(title, block_id=f"home_group:{group}")


def _pager(page: int, page_count: int, total: int) -> list[Block]:
    elements = []
    if page > 0:
        elements.append(button("◀ Previous", action_id=make_action_id(ActionId.HOME_PAGE, "prev"), value=str(page - 1)))
    if page < page_count - 1:
        elements.append(button("Next ▶", action_id=make_action_id(ActionId.HOME_PAGE, "next"), value=str(page + 1)))
    first = page * CARDS_PER_PAGE + 1
    last = min(total, first + CARDS_PER_PAGE - 1)
    return [
        context(f"Page {page + 1} of {page_count} · tasks {first}–{last} of {total}", block_id="home_page_info"),
        actions(elements, block_id="home_pager"),
    ]
