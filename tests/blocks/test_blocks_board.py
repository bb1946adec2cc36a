import json
import random
import re
from datetime import timedelta

import pytest

from bot.blocks.board import COLLAPSIBLE_STATES, column_sort_key, order_tasks, render_board
from bot.blocks.card import CARD_ACTIONS, STATE_LABEL
from bot.blocks.limits import MESSAGE_TOTAL_TEXT_MAX, total_text_chars, validate_message
from bot.ids import parse_action_id
from orchestrator.states import STATE_ORDER, TaskState

from .block_factories import NASTY_TITLE, NOW, build_task, build_tasks

COMPACT_ID = re.compile(r"^• \*(?:<[^|>]+\|)?#(\d+)>?\*", re.MULTILINE)
MORE = re.compile(r"^\+(\d+) more", re.MULTILINE)


def _account(payload):
    """Per state: ids shown as cards, ids shown as compact lines, and hidden counts."""
    cards, lines, hidden = {}, {}, {s: 0 for s in STATE_ORDER}
    for block in payload["blocks"]:
        block_id = block.get("block_id", "")
        if block_id.startswith("card:"):
            cards[int(block_id.split(":")[1])] = block
        elif block_id.startswith("compact:"):
            state = TaskState(block_id.split(":")[1])
            text = block["text"]["text"]
            for task_id in COMPACT_ID.findall(text):
                lines.setdefault(state, []).append(int(task_id))
            hidden[state] += sum(int(n) for n in MORE.findall(text))
        elif block_id == "board_finished":
            text = block["text"]["text"]
            for state in COLLAPSIBLE_STATES:
                match = re.search(rf"(\d+) {STATE_LABEL[state].lower()}", text)
                hidden[state] += int(match.group(1)) if match else 0
    return cards, lines, hidden


@pytest.mark.parametrize("count", [0, 1, 5, 60, 1000])
def test_board_fits_and_counts_every_task_once(count):
    tasks = build_tasks(count, nasty_every=7)
    payload = render_board(tasks, now=NOW)
    validate_message(payload)
    assert len(payload["blocks"]) <= 50
    assert total_text_chars(payload["blocks"]) <= MESSAGE_TOTAL_TEXT_MAX

    cards, lines, hidden = _account(payload)
    shown = list(cards) + [i for ids in lines.values() for i in ids]
    assert len(shown) == len(set(shown)), "a task is shown twice"
    by_state = order_tasks(tasks)
    for state in STATE_ORDER:
        expected_ids = {t.id for t in by_state[state]}
        shown_here = {i for i in cards if i in expected_ids} | set(lines.get(state, []))
        assert shown_here <= expected_ids
        assert len(shown_here) + hidden[state] == len(expected_ids), state


def test_empty_board():
    payload = render_board([], now=NOW)
    validate_message(payload)
    assert "No tasks yet" in json.dumps(payload)


def test_small_board_is_complete_with_all_buttons():
    tasks = [build_task(i, state) for i, state in enumerate(STATE_ORDER, start=1)]
    payload = render_board(tasks, now=NOW)
    validate_message(payload)
    cards, lines, hidden = _account(payload)
    assert set(cards) == {t.id for t in tasks} and not lines and not any(hidden.values())
    assert not any(b.get("block_id") == "board_footer" for b in payload["blocks"])
    for task in tasks:
        actions = next((b for b in payload["blocks"] if b.get("block_id") == f"card_actions:{task.id}"), None)
        got = {parse_action_id(e["action_id"])[0] for e in actions["elements"]} if actions else set()
        assert got == set(CARD_ACTIONS[task.state])


def test_big_board_collapses_finished_and_points_home():
    payload = render_board(build_tasks(1000), now=NOW, home_hint="slack://app?team=T1&id=A1&tab=home")
    validate_message(payload)
    text = json.dumps(payload, ensure_ascii=False)
    finished = next(b for b in payload["blocks"] if b.get("block_id") == "board_finished")["text"]["text"]
    assert "167 completed" in finished and "166 failed" in finished
    assert "<slack://app?team=T1&id=A1&tab=home|the Home tab>" in finished
    assert "compact lines have no buttons" in text
    assert "more — open" in text
    assert len(payload["text"]) <= 4000


def test_compact_lines_have_no_buttons():
    tasks = {t.id: t for t in build_tasks(60)}
    payload = render_board(list(tasks.values()), now=NOW)
    cards, lines, _ = _account(payload)
    assert lines, "60 tasks should not all fit as cards"
    button_targets = {int(e["value"]) for b in payload["blocks"] if b["type"] == "actions" for e in b["elements"]}
    assert button_targets == {i for i in cards if CARD_ACTIONS[tasks[i].state]}
    assert not button_targets & {i for ids in lines.values() for i in ids}


def test_reviews_keep_their_cards_longest():
    tasks = build_tasks(60)
    cards, lines, _ = _account(render_board(tasks, now=NOW))
    assert TaskState.AWAITING_REVIEW not in lines
    assert {i for i in cards} == {t.id for t in tasks if t.state == TaskState.AWAITING_REVIEW}


def test_card_order_within_columns():
    tasks = [
        build_task(1, TaskState.IN_PROGRESS, state_changed_at=NOW - timedelta(hours=2)),
        build_task(2, TaskState.IN_PROGRESS, state_changed_at=NOW - timedelta(minutes=1)),
        build_task(3, TaskState.IN_PROGRESS, queue_position=2),
        build_task(4, TaskState.IN_PROGRESS, queue_position=1),
    ]
    payload = render_board(tasks, now=NOW)
    order = [int(b["block_id"].split(":")[1]) for b in payload["blocks"] if b.get("block_id", "").startswith("card:")]
    assert order == [2, 1, 4, 3]
    assert [t.id for t in sorted(tasks, key=column_sort_key)] == order


def test_board_is_deterministic():
    tasks = build_tasks(300, nasty_every=5)
    first = render_board(tasks, now=NOW)
    shuffled = list(tasks)
    random.Random(4).shuffle(shuffled)
    assert render_board(shuffled, now=NOW) == first
    assert render_board(tasks, now=NOW.replace(second=59)) == first  # same minute
    assert json.dumps(render_board(tasks, now=NOW), sort_keys=True) == json.dumps(first, sort_keys=True)


def test_user_text_shows_literally_and_pings_nobody():
    tasks = [build_task(i, state, title=NASTY_TITLE + "y" * 5000, failure_reason=NASTY_TITLE)
             for i, state in enumerate(STATE_ORDER, start=1)]
    full, compact = render_board(tasks, now=NOW), render_board(build_tasks(1000, nasty_every=2), now=NOW)
    for payload in (full, compact):
        validate_message(payload)
        text = json.dumps(payload, ensure_ascii=False)
        for forbidden in ("<!channel>", "<!here>", "<@U123>", "<https://evil", "*bold*", "_it_", "~strike~", "`code`", "```"):
            assert forbidden not in text, forbidden
        assert "&lt;!channel&gt;" in text
    assert "&lt;@U123&gt;" in json.dumps(full)  # compact titles are cut before it


def test_max_blocks_is_respected():
    for max_blocks in (12, 20, 35):
        payload = render_board(build_tasks(200), now=NOW, max_blocks=max_blocks)
        validate_message(payload)
        assert len(payload["blocks"]) <= max_blocks
    with pytest.raises(ValueError):
        render_board([], now=NOW, max_blocks=3)


def test_thread_links_on_cards_and_lines():
    tasks = build_tasks(60)
    urls = {t.id: f"https://example.slack.com/archives/C1/p{t.id}" for t in tasks}
    payload = render_board(tasks, now=NOW, thread_urls=urls)
    validate_message(payload)
    text = json.dumps(payload)
    cards, lines, _ = _account(payload)
    for task_id in list(cards)[:3] + [i for ids in lines.values() for i in ids][:3]:
        assert f"<{urls[task_id]}|#{task_id}>" in text
