import json
from datetime import timedelta

import pytest

from bot.blocks.card import CARD_ACTIONS, COMPACT_LINE_MAX, render_card, render_card_compact
from bot.blocks.limits import validate_message
from bot.ids import ActionId, parse_action_id
from orchestrator.models import DiffSummary
from orchestrator.states import TaskState

from .block_factories import NASTY_TITLE, NOW, build_task

EXPECTED_BUTTONS = {
    TaskState.BACKLOG: {ActionId.DISPATCH},
    TaskState.WAITING: {ActionId.DISPATCH_ANYWAY, ActionId.CANCEL},
    TaskState.QUEUED: {ActionId.CANCEL},
    TaskState.IN_PROGRESS: {ActionId.CANCEL},
    TaskState.BLOCKED: {ActionId.CANCEL},
    TaskState.AWAITING_REVIEW: {ActionId.APPROVE, ActionId.REQUEST_CHANGES, ActionId.REJECT},
    TaskState.APPROVING: set(),   # decided: no second decision can be clicked
    TaskState.COMPLETED: set(),
    TaskState.FAILED: {ActionId.RETRY},
}


def _buttons(blocks):
    return [e for b in blocks if b["type"] == "actions" for e in b["elements"]]


def _text(blocks):
    return json.dumps(blocks, ensure_ascii=False)


@pytest.mark.parametrize("state", list(TaskState))
def test_each_state_shows_exactly_its_buttons(state):
    blocks = render_card(build_task(12, state), now=NOW)
    validate_message({"text": "x", "blocks": blocks})
    buttons = _buttons(blocks)
    assert {parse_action_id(b["action_id"])[0] for b in buttons} == EXPECTED_BUTTONS[state]
    assert set(CARD_ACTIONS[state]) == EXPECTED_BUTTONS[state]
    for b in buttons:
        assert b["value"] == "12"
        assert parse_action_id(b["action_id"])[1] == "12"


def test_reject_asks_for_confirmation_and_approve_does_not():
    buttons = {parse_action_id(b["action_id"])[0]: b for b in _buttons(render_card(build_task(3, TaskState.AWAITING_REVIEW), now=NOW))}
    assert buttons[ActionId.REJECT]["confirm"]["style"] == "danger"
    assert buttons[ActionId.REJECT]["style"] == "danger"
    assert buttons[ActionId.APPROVE]["style"] == "primary"
    assert "confirm" not in buttons[ActionId.APPROVE]


def test_buttons_can_be_left_out():
    blocks = render_card(build_task(3, TaskState.AWAITING_REVIEW), now=NOW, buttons=False)
    assert not _buttons(blocks)


def test_queued_task_shows_its_queue_position():
    text = _text(render_card(build_task(4, TaskState.IN_PROGRESS, queue_position=3), now=NOW))
    assert "queued #3" in text
    assert "queued #3" in render_card_compact(build_task(4, TaskState.IN_PROGRESS, queue_position=3))


def test_review_card_shows_branch_and_diff():
    task = build_task(5, TaskState.AWAITING_REVIEW, branch="taskpin/5-fix_login")
    text = render_card(task, now=NOW)[0]["text"]["text"]
    assert "`taskpin/5-fix_login`" in text
    assert "+120 −30 · 5 files" in text
    assert "`src/app.py`" in text and "+2 more" in text


def test_failed_card_shows_reason_escaped():
    task = build_task(6, TaskState.FAILED, failure_reason="boom <!channel> *loud*")
    text = _text(render_card(task, now=NOW))
    assert "&lt;!channel&gt;" in text and "<!channel>" not in text and "*loud*" not in text


def test_card_facts_and_thread_link():
    task = build_task(7, TaskState.IN_PROGRESS, owner="U0OWNER", cost_usd=1.5, attempts=2,
                      started_at=NOW - timedelta(minutes=75))
    url = "https://example.slack.com/archives/C1/p123"
    blocks = render_card(task, now=NOW, thread_url=url)
    text = _text(blocks)
    assert "<@U0OWNER>" in text and "claude-code" in text and "$1.50" in text and "attempt 2" in text
    assert "running 1h 15m" in text
    assert f"<{url}|#7>" in text
    assert "thread" not in _text(render_card(task, now=NOW, thread_url=None))
    assert "|" not in blocks[0]["text"]["text"].replace(f"{url}|", "")  # nothing else linked


def test_unsafe_thread_url_is_not_linked():
    text = render_card(build_task(7), now=NOW, thread_url="https://x.example|<!channel>")[0]["text"]["text"]
    assert "<!channel>" not in text and "x.example" not in text


def test_card_is_stable_within_a_minute():
    task = build_task(8, TaskState.IN_PROGRESS, started_at=NOW.replace(second=0) - timedelta(minutes=5))
    first = render_card(task, now=NOW.replace(second=1))
    assert render_card(task, now=NOW.replace(second=59)) == first
    assert render_card(task, now=NOW.replace(second=0) + timedelta(minutes=1)) != first


def test_nasty_long_title_is_literal_and_fits():
    task = build_task(9, TaskState.AWAITING_REVIEW, title=NASTY_TITLE + "x" * 5000,
                      diff=DiffSummary(1, 1, 1, files=("a`b```c<!channel>.py",)))
    blocks = render_card(task, now=NOW)
    validate_message({"text": "x", "blocks": blocks})
    text = _text(blocks)
    for forbidden in ("<!channel>", "<@U123>", "<!here>", "*bold*", "_it_", "~strike~", "`code`", "<https://evil"):
        assert forbidden not in text
    assert "&lt;!channel&gt;" in text
    line = render_card_compact(task)
    assert len(line) <= COMPACT_LINE_MAX and "<!channel>" not in line


def test_an_approval_in_progress_shows_in_the_review_column_without_buttons():
    from bot.blocks.board import render_board

    board = render_board([build_task(5, TaskState.APPROVING), build_task(6, TaskState.AWAITING_REVIEW)], now=NOW)
    text = _text(board["blocks"])
    assert "approving… `" in text and "#5" in text
    assert not [b for b in _buttons(board["blocks"]) if b["action_id"].endswith(":5")]
    review = next(b for b in board["blocks"] if b.get("type") == "section" and "Awaiting review" in _text([b]))
    assert review, "the review column heads both tasks"


def test_a_waiting_card_says_what_it_waits_for_in_the_backlog_column():
    from bot.blocks.board import render_board

    waiting = build_task(15, TaskState.WAITING, depends_on=(12, 13))
    text = json.dumps(render_card(waiting, now=NOW))
    assert "waits for #12, #13" in text and "Dispatch anyway" in text
    board = render_board([waiting, build_task(12, TaskState.IN_PROGRESS)], now=NOW)
    backlog = next(b for b in board["blocks"] if "Backlog" in json.dumps(b))
    assert "Backlog* (1)" in json.dumps(backlog) or "Backlog (1)" in json.dumps(backlog)


def test_a_running_task_shows_the_worker_running_it_escaped():
    text = _text(render_card(build_task(4, TaskState.BLOCKED, worker="gpu-box-2"), now=NOW))
    assert "on gpu-box-2" in text
    assert "on a&lt;b" in _text(render_card(build_task(4, TaskState.IN_PROGRESS, worker="a<b"), now=NOW))
    assert "on gpu-box-2" not in _text(render_card(build_task(4, TaskState.COMPLETED, worker="gpu-box-2"), now=NOW))
