"""The owner's DM and the Home tab's "Waiting for you": within Block Kit's limits, escaped, and
naming every waiting question."""
from __future__ import annotations

import json

from bot.blocks.home import render_home
from bot.blocks.limits import validate_message, validate_view
from bot.blocks.waiting import render_waiting_dm
from orchestrator.models import Option
from orchestrator.states import TaskState

from .block_factories import NOW, build_intervention, build_task

NASTY = "<!channel> *bold* <https://evil.example|click> & `code`"


def waiting(n: int):
    tasks = [build_task(i, TaskState.BLOCKED, owner="U1", title=f"{NASTY} {i}") for i in range(1, n + 1)]
    return [(t, build_intervention(intervention_id=100 + t.id, task_id=t.id, prompt=NASTY,
                                       options=(Option(id="yes", label="Yes"), Option(id="no", label="No")))) for t in tasks]


def test_the_dm_names_every_question_within_the_limits_and_escapes_agent_text():
    items = waiting(60)
    dm = render_waiting_dm("U1", items, {1: "https://slack.example/archives/C/p1"})
    validate_message(dm)
    text = json.dumps(dm)
    assert "60 agent questions" in text and "<@U1>" in text
    assert all(f"*#{i}*" in text for i in range(1, 61))
    assert "<!channel>" not in text and "<https://evil" not in text
    assert "<https://slack.example/archives/C/p1|open the thread>" in text


def test_the_dm_says_so_when_nothing_waits():
    assert "Nothing waits" in json.dumps(render_waiting_dm("U1", [], {}))


def test_home_lists_the_questions_with_answer_buttons_and_keeps_every_card():
    tasks = [build_task(i, TaskState.BLOCKED, owner="U1") for i in range(1, 41)]
    items = waiting(8)
    view = render_home(tasks, viewer="U1", now=NOW, waiting=items)
    validate_view(view)
    text = json.dumps(view)
    assert "Waiting for you* (8)" in text and "and 3 more" in text and "<!channel>" not in text
    buttons = [e["action_id"] for b in view["blocks"] if b["type"] == "actions" for e in b["elements"]]
    assert sum(a.startswith("intervention_option:") for a in buttons) >= 5
