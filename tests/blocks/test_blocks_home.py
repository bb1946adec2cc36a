import json

import pytest

from bot.blocks.home import CARDS_PER_PAGE, render_home
from bot.blocks.limits import validate_view
from bot.ids import ActionId, parse_action_id
from orchestrator.states import TaskState

from .block_factories import NOW, build_task, build_tasks

VIEWER = "U001OWNER"


def _card_ids(view):
    return [int(b["block_id"].split(":")[1]) for b in view["blocks"] if b.get("block_id", "").startswith("card:")]


def _pager(view):
    block = next((b for b in view["blocks"] if b.get("block_id") == "home_pager"), None)
    return {parse_action_id(e["action_id"])[1]: int(e["value"]) for e in block["elements"]} if block else {}


@pytest.mark.parametrize("count", [0, 1, 25, 26, 1000])
def test_pages_cover_every_task_exactly_once(count):
    tasks = build_tasks(count, nasty_every=9)
    first = render_home(tasks, viewer=VIEWER, now=NOW)
    validate_view(first)
    pages, seen, page = 0, [], 0
    while True:
        view = render_home(tasks, viewer=VIEWER, now=NOW, page=page)
        validate_view(view)
        assert len(view["blocks"]) <= 100
        seen += _card_ids(view)
        pages += 1
        pager = _pager(view)
        if "next" not in pager:
            break
        assert pager["next"] == page + 1
        page = pager["next"]
    assert sorted(seen) == sorted(t.id for t in tasks)
    assert pages == max(1, -(-count // CARDS_PER_PAGE))


def test_viewer_tasks_come_first():
    tasks = build_tasks(100)
    mine = {t.id for t in tasks if t.owner == VIEWER}
    order = []
    for page in range(4):
        order += _card_ids(render_home(tasks, viewer=VIEWER, now=NOW, page=page))
    assert set(order[: len(mine)]) == mine
    text = json.dumps(render_home(tasks, viewer=VIEWER, now=NOW))
    assert "Your tasks" in text and f"{len(mine)} yours" in text


def test_page_is_clamped_and_pager_has_previous():
    tasks = build_tasks(60)
    last = render_home(tasks, viewer=VIEWER, now=NOW, page=99)
    assert _pager(last) == {"prev": 1}
    assert render_home(tasks, viewer=VIEWER, now=NOW, page=-3) == render_home(tasks, viewer=VIEWER, now=NOW)


def test_home_has_a_new_task_button_and_card_buttons():
    view = render_home([build_task(1, TaskState.AWAITING_REVIEW, owner=VIEWER)], viewer=VIEWER, now=NOW)
    action_ids = [e["action_id"] for b in view["blocks"] if b["type"] == "actions" for e in b["elements"]]
    assert parse_action_id(action_ids[0])[0] == ActionId.OPEN_CREATE_MODAL
    assert {parse_action_id(a)[0] for a in action_ids[1:]} == {ActionId.APPROVE, ActionId.REQUEST_CHANGES, ActionId.REJECT}
    assert view["type"] == "home"
