"""Every mrkdwn string taskpin sends is escaped: its own labels too.

Inside mrkdwn (and in a quote especially) Slack reads any ``<…>`` as a control sequence, so a
label like ``<1m`` or ``<$0.01`` must go out as ``&lt;1m``. The only ``<`` allowed are the
sequences taskpin means: a user mention and a link.
"""
from __future__ import annotations

import random
import re
from datetime import timedelta

import pytest

from bot.blocks.board import render_board
from bot.blocks.home import render_home
from bot.blocks.intervention import render_intervention, render_intervention_reminder, render_intervention_resolved
from bot.blocks.thread import (
    dispatch_message,
    ephemeral_text,
    milestone_message,
    output_summary_message,
    result_message,
    review_message,
)
from bot.replies import explain_mrkdwn
from orchestrator import IllegalTransition
from orchestrator.models import InterventionKind, InterventionStatus, Option
from orchestrator.states import TaskState

from .block_factories import NOW, build_intervention, build_task
from .test_blocks_fuzz import _random_task

QUOTE_MARK = re.compile(r"^>", re.MULTILINE)   # a block quote taskpin means
MEANT = re.compile(r"<@[UW][A-Z0-9_]+>|<(?:https?|slack)://[^\s<>|]+(?:\|[^<>]*)?>")


def mrkdwn_strings(obj, *, top: bool = True):
    """Every string Slack parses as mrkdwn: mrkdwn text objects and a message's fallback text."""
    if isinstance(obj, dict):
        if obj.get("type") == "mrkdwn" and isinstance(obj.get("text"), str):
            yield obj["text"]
        elif top and isinstance(obj.get("text"), str):
            yield obj["text"]
        for key, value in obj.items():
            if key != "text" or not isinstance(value, str):
                yield from mrkdwn_strings(value, top=False)
    elif isinstance(obj, list):
        for item in obj:
            yield from mrkdwn_strings(item, top=False)


def unmeant_controls(payload) -> list[str]:
    bad = []
    for text in mrkdwn_strings(payload):
        rest = QUOTE_MARK.sub("", MEANT.sub("", text))
        if "<" in rest or ">" in rest:
            bad.append(text)
    return bad


def _renders(rng):
    just_now = NOW - timedelta(seconds=5)
    tasks = [build_task(i, state, state_changed_at=just_now, started_at=just_now, finished_at=just_now,
                        cost_usd=0.004)
             for i, state in enumerate(TaskState, start=1)]
    tasks += [_random_task(rng, 100 + i) for i in range(30)]
    yield render_board(tasks, now=NOW, thread_urls={1: "https://x.slack.com/archives/C1/p1"})
    yield render_home(tasks, viewer="U1", now=NOW)
    iv = build_intervention(kind=InterventionKind.QUESTION, options=(Option(id="a<b>", label="<b>"),),
                            prompt="<!channel> pick", created_at=just_now)
    for task in tasks[:8]:
        yield dispatch_message(task, "U1")
        yield milestone_message(task, "attempt 1 failed: <1m <@U1>", by="U2")
        yield output_summary_message(task, ["<script>", "a > b"])
        yield review_message(task)
        yield result_message(task)
        yield render_intervention(task, iv, owner="U1")
        yield render_intervention_reminder(task, iv, owner="U1", now=NOW)
        done = build_intervention(kind=iv.kind, options=iv.options, prompt=iv.prompt, created_at=just_now,
                                  status=InterventionStatus.ANSWERED, answer_text="> <quoted> & <1m",
                                  answer_options=("a<b>",), answered_by="U9", resolved_at=just_now)
        yield render_intervention_resolved(task, done)
    yield ephemeral_text("Task is <1m old <!here>")


def test_no_render_sends_an_unmeant_control_sequence():
    rng = random.Random(7)
    for payload in _renders(rng):
        assert unmeant_controls(payload) == []


@pytest.mark.parametrize("label_source", ["elapsed", "cost"])
def test_own_labels_are_escaped_on_cards(label_source):
    just_now = NOW - timedelta(seconds=5)
    task = build_task(1, TaskState.BACKLOG, state_changed_at=just_now, cost_usd=0.004)
    board = str(render_board([task], now=NOW))
    needle = "&lt;1m" if label_source == "elapsed" else "&lt;$0.01"
    assert needle in board and needle.replace("&lt;", "<") not in board.replace(needle, "")


def test_who_won_a_race_is_a_mention_and_the_rest_is_escaped():
    exc = IllegalTransition(3, TaskState.FAILED, TaskState.COMPLETED, by="U_ANA", by_reason="rejected by U_ANA: <no>")
    text = explain_mrkdwn(exc, "approve <it>")
    assert text.startswith("Task #3 was already rejected by <@U_ANA>") and "&lt;it&gt;" in text
    assert unmeant_controls({"text": text}) == []


def test_the_help_text_shows_its_placeholder_instead_of_opening_a_control_sequence():
    from bot.listeners.commands import HELP

    assert unmeant_controls({"text": HELP}) == [] and "&lt;what the agent should do&gt;" in HELP
