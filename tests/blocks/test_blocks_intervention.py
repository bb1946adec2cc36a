import json
from datetime import timedelta

from bot.blocks.intervention import (
    render_intervention,
    render_intervention_reminder,
    render_intervention_resolved,
)
from bot.blocks.limits import validate_message
from bot.ids import ActionId, decode_option_value, parse_action_id
from orchestrator.models import InterventionKind, InterventionStatus, Option
from orchestrator.states import TaskState

from .block_factories import NASTY_TITLE, NOW, build_intervention, build_task

TASK = build_task(12, TaskState.BLOCKED, title=NASTY_TITLE)
PERMISSION_OPTIONS = (
    Option(id="allow_once", label="Allow", kind="allow"),
    Option(id="allow_always", label="Always allow", kind="allow"),
    Option(id="reject_once", label="Deny", kind="deny"),
)


def _elements(payload):
    return [e for b in payload["blocks"] if b["type"] == "actions" for e in b["elements"]]


def _permission(**overrides):
    fields = dict(kind=InterventionKind.PERMISSION, options=PERMISSION_OPTIONS, tool="Bash",
                  detail="rm -rf build && echo ``` <!channel> ```", prompt="")
    fields.update(overrides)
    return build_intervention(**fields)


def test_permission_shows_exact_command_and_styled_buttons():
    payload = render_intervention(TASK, _permission(), owner="U0OWNER")
    validate_message(payload)
    detail = next(b for b in payload["blocks"] if b["block_id"] == "intervention_detail:7")["text"]["text"]
    assert detail.count("```") == 2
    assert "rm -rf build &amp;&amp; echo" in detail and "&lt;!channel&gt;" in detail
    *answers, always = _elements(payload)
    styles = {e["text"]["text"]: e.get("style") for e in answers}
    assert styles == {"Allow": "primary", "Always allow": "primary", "Deny": "danger"}
    assert "<@U0OWNER>" in payload["text"] and "<@U0OWNER>" in payload["blocks"][0]["text"]["text"]
    assert "deny the request" in json.dumps(payload)
    for element in answers:
        assert parse_action_id(element["action_id"])[0] == ActionId.ANSWER_OPTION
        assert decode_option_value(element["value"]).resolve(PERMISSION_OPTIONS) is not None
    assert always["text"]["text"] == "Always allow this" and always["value"] == "7"
    assert parse_action_id(always["action_id"]) == (ActionId.ANSWER_ALWAYS, "7")
    assert "&lt;!channel&gt;" in always["confirm"]["text"]["text"], "the command in the confirmation is escaped"


def test_always_allow_is_offered_only_where_a_rule_can_be_written():
    def labels(iv):
        return [e["text"]["text"] for e in _elements(render_intervention(TASK, iv, owner="U0OWNER"))]
    assert "Always allow this" not in labels(_permission(tool=None))                    # no tool to name
    assert "Always allow this" not in labels(_permission(options=(Option("no", "Deny", kind="deny"),)))
    assert "Always allow this" not in labels(build_intervention(options=(Option("a", "A", kind="allow"),)))


def test_question_text_is_escaped():
    question = build_intervention(prompt="*Pick* <!here> one\n> not a quote", options=(Option("a", "A"),))
    payload = render_intervention(TASK, question, owner="U0OWNER")
    validate_message(payload)
    text = json.dumps(payload, ensure_ascii=False)
    assert "<!here>" not in text and "*Pick*" not in text and "<!channel>" not in text
    assert "&lt;!here&gt;" in text
    assert "reply in this thread" in text


def _options(count, long_ids=False):
    return tuple(Option(id=("id-" + "x" * 300 if long_ids else "opt") + f"-{i}", label=f"Choice {i}",
                        description=f"about {i}" if i % 2 else "") for i in range(count))


def test_few_options_are_buttons_many_are_selects():
    for count, kind in ((3, "button"), (25, "button"), (26, "static_select"), (250, "static_select")):
        question = build_intervention(options=_options(count, long_ids=True))
        payload = render_intervention(TASK, question, owner="U0OWNER")
        validate_message(payload)
        elements = _elements(payload)
        assert {e["type"] for e in elements} == {kind}
        values = [e["value"] for e in elements] if kind == "button" else [o["value"] for e in elements for o in e["options"]]
        assert len(values) == count
        assert [decode_option_value(v).resolve(question.options) for v in values] == [o.id for o in question.options]


def test_too_many_options_fit_the_message_and_say_so():
    for multi_select in (False, True):
        question = build_intervention(options=_options(3000), multi_select=multi_select,
                                      prompt="why? " * 1000)
        payload = render_intervention(TASK, question, owner="U0OWNER")
        validate_message(payload)
        shown = sum(len(e["options"]) for e in _elements(payload) if "options" in e)
        hint = payload["blocks"][-1]["elements"][0]["text"]
        assert 0 < shown < 3000
        assert f"{3000 - shown} more options did not fit" in hint


def test_multi_select_uses_checkboxes_and_submit():
    question = build_intervention(options=_options(25), multi_select=True)
    payload = render_intervention(TASK, question, owner="U0OWNER")
    validate_message(payload)
    elements = _elements(payload)
    assert [e["type"] for e in elements] == ["checkboxes"] * 3 + ["button"]
    assert parse_action_id(elements[-1]["action_id"]) == (ActionId.ANSWER_SUBMIT, "7")
    assert sum(len(e["options"]) for e in elements[:-1]) == 25


def test_input_without_options_only_asks_for_a_reply():
    payload = render_intervention(TASK, build_intervention(kind=InterventionKind.INPUT), owner="someone")
    validate_message(payload)
    assert not _elements(payload)


def test_resolved_shows_who_answered_what_without_buttons():
    answered = _permission(status=InterventionStatus.ANSWERED, answer_options=("reject_once",),
                           answered_by="U9", resolved_at=NOW)
    payload = render_intervention_resolved(TASK, answered)
    validate_message(payload)
    assert not _elements(payload)
    outcome = payload["blocks"][-1]["text"]["text"]
    assert "<@U9>" in outcome and "*Deny*" in outcome and outcome.startswith("🚫")

    by_reply = _permission(status=InterventionStatus.ANSWERED, answer_text="use `make clean` <!channel>", answered_by="U9")
    outcome = render_intervention_resolved(TASK, by_reply)["blocks"][-1]["text"]["text"]
    assert "denied it" in outcome and "<!channel>" not in outcome and "`make clean`" not in outcome

    for status, words in ((InterventionStatus.EXPIRED, "expired"), (InterventionStatus.CANCELLED, "Cancelled")):
        payload = render_intervention_resolved(TASK, build_intervention(status=status, options=_options(3)))
        validate_message(payload)
        assert words in payload["blocks"][-1]["text"]["text"] and not _elements(payload)


def test_reminder():
    payload = render_intervention_reminder(TASK, build_intervention(), owner="U0OWNER", now=NOW + timedelta(minutes=10))
    validate_message(payload)
    assert "<@U0OWNER>" in payload["text"] and "30m" in payload["blocks"][0]["text"]["text"]


def test_resolved_fallback_is_not_escaped_twice():
    answered = build_intervention(options=(Option("pg", "Postgres"),), status=InterventionStatus.ANSWERED,
                                  answer_options=("pg",), answered_by="U9")
    text = render_intervention_resolved(TASK, answered)["text"]
    assert "<@U9>" in text and "&lt;@U9&gt;" not in text and "*Postgres*" in text
    assert "<!channel>" not in text
