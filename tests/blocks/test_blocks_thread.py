import json
from datetime import timedelta

from bot.blocks.limits import validate_message
from bot.blocks.thread import (
    dispatch_message,
    ephemeral_text,
    milestone_message,
    output_summary_message,
    result_message,
    review_message,
)
from orchestrator.models import DiffSummary
from orchestrator.states import TaskState

from .block_factories import NASTY_TITLE, NOW, build_task


def _text(payload):
    return json.dumps(payload, ensure_ascii=False)


def test_dispatch_message():
    task = build_task(12, TaskState.IN_PROGRESS, title="Fix login bug", branch="taskpin/12-fix-login", queue_position=2)
    payload = dispatch_message(task, "U0OWNER")
    validate_message(payload)
    text = payload["blocks"][0]["text"]["text"]
    assert "*#12* Fix login bug, dispatched by <@U0OWNER> to claude-code on `taskpin/12-fix-login`" in text
    assert "Queued #2" in text


def test_every_thread_message_escapes_and_fits():
    nasty = build_task(3, TaskState.FAILED, title=NASTY_TITLE * 50, failure_reason=NASTY_TITLE * 50,
                       started_at=NOW - timedelta(hours=1), finished_at=NOW, attempts=2, input_tokens=1200)
    review = build_task(4, TaskState.AWAITING_REVIEW, title=NASTY_TITLE,
                        diff=DiffSummary(40, 900, 12, files=tuple(f"src/m{i}_x.py" for i in range(40)), commit="a" * 40))
    payloads = [
        dispatch_message(nasty, "<!channel>"),
        milestone_message(nasty, NASTY_TITLE * 100),
        output_summary_message(nasty, [NASTY_TITLE] * 10),
        review_message(review),
        result_message(nasty),
        result_message(build_task(5, TaskState.COMPLETED)),
        ephemeral_text(NASTY_TITLE),
    ]
    for payload in payloads:
        validate_message(payload)
        text = _text(payload)
        assert "<!channel>" not in text and "<@U123>" not in text
        if payload is not payloads[2]:  # inside a code block, *bold* is literal already
            assert "*bold*" not in text
    assert _text(payloads[2]).count("```") == 2
    assert "`src/m0_x.py`" in _text(payloads[3]) and "+25 more" in _text(payloads[3])
    assert "2 attempts" in _text(payloads[4])


def test_output_summary_keeps_the_tail():
    lines = [f"line {i} <&>`" for i in range(10_000)]
    payload = output_summary_message(build_task(1), lines)
    validate_message(payload)
    body = payload["blocks"][1]["text"]["text"]
    assert body.count("```") == 2
    assert "line 9999 " in body and "line 0 " not in body
    assert "of 10000 lines" in payload["blocks"][0]["text"]["text"]


def test_milestone_escapes_text_and_mentions_only_by():
    payload = milestone_message(build_task(2), "changes requested by <@U7>", by="U8")
    validate_message(payload)
    text = payload["blocks"][0]["text"]["text"]
    assert "&lt;@U7&gt;" in text and "(<@U8>)" in text
