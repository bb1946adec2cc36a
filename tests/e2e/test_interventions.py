"""The agent asks, the human answers in Slack: permissions, questions, multi-select, who may
answer, duplicates, reminders and timeouts. Real runtime, emulator, agent subprocesses."""
from __future__ import annotations

import asyncio

from bot.ids import ActionId, make_action_id
from orchestrator import InterventionResolved, TaskState
from tests.core.helpers import Recorder, scripted, wait_state, wait_until

from .conftest import APPROVER, BOARD, OTHER, OWNER
from .scenario import wait_board
from .ui import (
    click_card,
    ephemeral,
    every_ack_is_fast,  # noqa: F401  (autouse)
    fast,
    has_controls,
    in_thread,
    lines_of_type,
    message_now,
    slash_task,
    thread_ts,
)

S = TaskState
PERMISSION = {"ask": {"id": "p1", "kind": "permission", "prompt": "May I clean the build directory?",
                      "tool": "Bash", "detail": "rm -rf build"}}


async def asked(emu, taskpin, steps: list[dict], tmp_path, *, title: str = "Clean up", **settings):
    """Start taskpin with a scripted agent, create and dispatch a task, wait for its question.
    Returns (core, task, the question message, the agent's stdin log)."""
    log = tmp_path / "stdin.log"
    await taskpin.start({"bot": scripted(steps, env={"SCRIPTED_AGENT_LOG": str(log)})}, **settings)
    core = taskpin.core
    task = await slash_task(emu, core, title)
    await click_card(emu, OWNER, ActionId.DISPATCH, task.id)
    await wait_state(core, task.id, S.BLOCKED)
    [iv] = await core.pending_interventions(task.id)
    question = await in_thread(emu, task.id, "the agent")
    assert question["blocks"][0]["block_id"] == f"intervention:{iv.id}"
    return core, task, question, log, iv


def answers(log) -> list[dict]:
    return lines_of_type(log, "answer")


async def test_a_permission_approved_with_its_button_lets_the_agent_go_on(emu, taskpin, tmp_path):
    core, task, question, log, iv = await asked(
        emu, taskpin, [PERMISSION, {"sleep": 0.4}, {"finish": "cleaned"}], tmp_path)
    raw, text = str(question), emu.text_of(question)
    assert "<@U_OWNER>" in raw and "wants to use *Bash*" in text
    assert "```\nrm -rf build\n```" in text, "the exact command, verbatim"
    approve, deny, always = [el for b in question["blocks"] if b["type"] == "actions" for el in b["elements"]]
    assert always["text"]["text"] == "Always allow this"   # tests/e2e/test_policy_e2e.py presses it
    assert (approve["text"]["text"], approve["style"], deny["text"]["text"], deny["style"]) == \
        ("Approve", "primary", "Deny", "danger")
    await wait_board(emu, lambda t: "Blocked" in t and "question" in t, what="the blocked card")

    fast(await emu.click_button(OWNER, BOARD, question["ts"], approve["action_id"], approve["value"]))
    await wait_state(core, task.id, S.IN_PROGRESS, timeout=2)
    assert [(a["id"], a["option"], a["options"]) for a in answers(log)] == [("p1", "allow", ["allow"])]
    done = await message_now(emu, question["ts"], lambda m: "chose" in emu.text_of(m))
    assert "✅ <@U_OWNER> chose *Approve*" in emu.text_of(done)
    assert not has_controls(done), "the buttons are gone once answered"
    assert "rm -rf build" in emu.text_of(done)
    await wait_state(core, task.id, S.AWAITING_REVIEW)
    moves = [(h.from_state, h.to_state, h.actor) for h in await core.history(task.id)][-3:]
    assert moves == [(S.IN_PROGRESS, S.BLOCKED, "agent"), (S.BLOCKED, S.IN_PROGRESS, OWNER),
                     (S.IN_PROGRESS, S.AWAITING_REVIEW, "agent")]
    await wait_board(emu, lambda t: "Awaiting review* (1)" in t and "Blocked* (" not in t, what="the card in review")
    assert emu.ephemerals(user=OWNER)[1:] == [], "no error for the person who answered"


async def test_a_thread_reply_to_a_permission_denies_it_and_tells_the_agent_why(emu, taskpin, tmp_path):
    core, task, question, log, iv = await asked(emu, taskpin, [PERMISSION, {"finish": "ok"}], tmp_path)
    assert "Reply in this thread to deny" in emu.text_of(question)
    ts = await thread_ts(emu, task.id)
    fast(await emu.user_message(OWNER, BOARD, "No: use `make clean` instead (build < 1 GB & fine)", thread_ts=ts))
    await wait_until(lambda: answers(log), what="the answer line")
    assert [(a["option"], a["options"], a["text"]) for a in answers(log)] == \
        [("deny", ["deny"], "No: use `make clean` instead (build < 1 GB & fine)")]
    await wait_until(lambda: any("U_OWNER answered: No: use `make clean` instead (build < 1 GB & fine)" in line
                                 for line in core.tail_log(task.id)), what="the answer in the task log")
    done = await message_now(emu, question["ts"], lambda m: "denied" in emu.text_of(m))
    assert "🚫 <@U_OWNER> denied it" in emu.text_of(done) and "make clean" in emu.text_of(done)
    assert not has_controls(done)
    await wait_state(core, task.id, S.AWAITING_REVIEW)


async def test_only_the_owner_or_an_approver_may_answer(emu, taskpin, tmp_path):
    core, task, question, log, iv = await asked(emu, taskpin, [PERMISSION, {"finish": "ok"}], tmp_path)
    approve_id, deny_id = (make_action_id(ActionId.ANSWER_OPTION, iv.id, i) for i in (0, 1))

    fast(await emu.click_button(OTHER, BOARD, question["ts"], approve_id))
    refusal = await ephemeral(emu, OTHER, "owner or an approver")
    assert task.short_id in refusal["text"]
    ts = await thread_ts(emu, task.id)
    fast(await emu.user_message(OTHER, BOARD, "just do it", thread_ts=ts))
    await ephemeral(emu, OTHER, "not forwarded")
    await asyncio.sleep(0.2)
    assert answers(log) == [] and (await core.get_task(task.id)).state is S.BLOCKED
    assert has_controls(emu.message(BOARD, question["ts"])), "still open for the owner"

    fast(await emu.click_button(APPROVER, BOARD, question["ts"], deny_id))     # an approver may
    await wait_until(lambda: answers(log), what="the approver's answer")
    assert [a["option"] for a in answers(log)] == ["deny"]
    done = await message_now(emu, question["ts"], lambda m: not has_controls(m))
    assert "🚫 <@U_APPROVER> chose *Deny*" in emu.text_of(done)
    await wait_state(core, task.id, S.AWAITING_REVIEW)


async def test_a_question_with_options_is_answered_with_a_button(emu, taskpin, tmp_path):
    ask = {"ask": {"id": "db", "kind": "question", "prompt": "Which database?",
                   "options": [{"id": "pg", "label": "PostgreSQL", "description": "the usual"},
                               {"id": "sqlite", "label": "SQLite"}]}}
    core, task, question, log, iv = await asked(emu, taskpin, [ask, {"finish": "ok"}], tmp_path)
    text = emu.text_of(question)
    assert "asks:" in text and "> Which database?" in text and "PostgreSQL* — the usual" in text
    labels = [el["text"]["text"] for b in question["blocks"] if b["type"] == "actions" for el in b["elements"]]
    assert labels == ["PostgreSQL", "SQLite"]

    fast(await emu.click_button(OWNER, BOARD, question["ts"], make_action_id(ActionId.ANSWER_OPTION, iv.id, 1)))
    await wait_until(lambda: answers(log), what="the answer")
    assert [(a["id"], a["option"], a["options"], a["text"]) for a in answers(log)] == [("db", "sqlite", ["sqlite"], "")]
    done = await message_now(emu, question["ts"], lambda m: not has_controls(m))
    assert "✅ <@U_OWNER> chose *SQLite*" in emu.text_of(done)
    await wait_state(core, task.id, S.AWAITING_REVIEW)


async def test_a_multi_select_question_is_answered_with_checkboxes_and_submit(emu, taskpin, tmp_path):
    ask = {"ask": {"id": "langs", "kind": "question", "prompt": "Which languages should the docs cover?",
                   "multi_select": True, "options": ["en", "de", "fr"]}}
    core, task, question, log, iv = await asked(emu, taskpin, [ask, {"finish": "ok"}], tmp_path)
    boxes = make_action_id(ActionId.ANSWER_CHECKBOXES, iv.id, 0)
    submit = make_action_id(ActionId.ANSWER_SUBMIT, iv.id)
    [element] = [el for b in question["blocks"] if b["type"] == "actions" for el in b["elements"]
                 if el["action_id"] == boxes]
    assert [o["text"]["text"] for o in element["options"]] == ["en", "de", "fr"]

    fast(await emu.click_button(OWNER, BOARD, question["ts"], submit))         # nothing ticked yet
    await ephemeral(emu, OWNER, "Tick at least one option")
    assert answers(log) == []

    fast(await emu.check_boxes(OWNER, BOARD, question["ts"], boxes, [f"{iv.id}:en", f"{iv.id}:fr"]))
    await asyncio.sleep(0.1)
    assert answers(log) == [], "ticking a box does not answer yet"
    fast(await emu.click_button(OWNER, BOARD, question["ts"], submit))
    await wait_until(lambda: answers(log), what="the answer")
    assert [(a["option"], a["options"]) for a in answers(log)] == [("en", ["en", "fr"])]
    done = await message_now(emu, question["ts"], lambda m: not has_controls(m))
    assert "<@U_OWNER> chose *en*, *fr*" in emu.text_of(done)
    await wait_state(core, task.id, S.AWAITING_REVIEW)


async def test_a_redelivered_reply_answers_once(emu, taskpin, tmp_path):
    ask = {"ask": {"id": "name", "kind": "input", "prompt": "What should the module be called?"}}
    core, task, question, log, iv = await asked(emu, taskpin, [ask, {"wait_message": True}, {"finish": "ok"}],
                                                tmp_path)
    events = Recorder(core)
    ts = await thread_ts(emu, task.id)
    reply = fast(await emu.user_message(OWNER, BOARD, "call it billing", thread_ts=ts))
    again = fast(await emu.redeliver(reply))             # Slack retries the same event
    assert again.delivery.payload["event_id"] == reply.delivery.payload["event_id"]
    assert again.delivery.retry_attempt == 1
    await wait_until(lambda: answers(log), what="the answer")
    await asyncio.sleep(0.5)
    assert [a["text"] for a in answers(log)] == ["call it billing"]
    assert lines_of_type(log, "message") == [], "the retry must not become a follow-up message"
    assert len(events.of(InterventionResolved)) == 1
    assert sum("answered: call it billing" in line for line in core.tail_log(task.id)) == 1
    assert not [e for e in emu.ephemerals(user=OWNER) if "already" in (e.get("text") or "")]
    assert (await core.get_task(task.id)).state is S.IN_PROGRESS

    fast(await emu.user_message(OWNER, BOARD, "and add tests", thread_ts=ts))   # a new reply does reach it
    await wait_state(core, task.id, S.AWAITING_REVIEW)
    assert [m["text"] for m in lines_of_type(log, "message")] == ["and add tests"]


async def test_an_unanswered_question_is_reminded_then_times_out(emu, taskpin, tmp_path):
    ask = {"ask": {"id": "q", "kind": "question", "prompt": "Ship it?", "options": ["yes", "no"]}}
    core, task, question, log, iv = await asked(emu, taskpin, [ask, {"finish": "ok"}], tmp_path,
                                                intervention_reminder_s=0.3, intervention_timeout_s=4.0)
    reminder = await in_thread(emu, task.id, "waiting for your answer", timeout=3)
    assert "<@U_OWNER>" in reminder["text"] and "<@U_OWNER>" in emu.text_of(reminder)
    assert reminder["ts"] > question["ts"]
    assert has_controls(emu.message(BOARD, question["ts"])), "the reminder is a new reply; the buttons stay"

    failed = await wait_state(core, task.id, S.FAILED, timeout=5)
    assert "intervention timeout" in failed.failure_reason
    await in_thread(emu, task.id, "intervention timeout")
    closed = await message_now(emu, question["ts"], lambda m: not has_controls(m))
    assert "Ship it?" in emu.text_of(closed)
    await wait_board(emu, lambda t: "intervention timeout" in t, what="the reason on the card")
    assert answers(log) == []


async def test_an_agent_that_finishes_right_after_the_answer_reaches_review(emu, taskpin, tmp_path):
    """The answer moves the task blocked -> in_progress while the agent, already done, moves it to review."""
    ask = {"ask": {"id": "q", "kind": "question", "prompt": "Go?", "options": ["go"]}}
    core, task, question, log, iv = await asked(emu, taskpin, [ask, {"finish": "ok"}], tmp_path)
    fast(await emu.click_button(OWNER, BOARD, question["ts"], make_action_id(ActionId.ANSWER_OPTION, iv.id, 0)))
    await wait_state(core, task.id, S.AWAITING_REVIEW, timeout=5)
    await message_now(emu, question["ts"], lambda m: not has_controls(m))
    assert emu.ephemerals(user=OWNER)[1:] == []


async def test_an_answer_the_agent_cannot_take_is_told_and_the_question_keeps_its_buttons(emu, taskpin, tmp_path):
    question_step = {"emit": {"type": "intervention", **PERMISSION["ask"]}}
    core, task, question, log, iv = await asked(
        emu, taskpin, [{"close_stdin": True}, question_step, {"hang": True}], tmp_path)   # closed before it asks
    approve = next(el for b in question["blocks"] if b["type"] == "actions" for el in b["elements"])
    fast(await emu.click_button(OWNER, BOARD, question["ts"], approve["action_id"], approve["value"]))
    note = await ephemeral(emu, OWNER, "could not reach the agent")
    assert "still open" in note["text"]
    told = await in_thread(emu, task.id, "the answer could not reach the agent")
    assert "<@U_OWNER>" in str(told) and "answer it again" in emu.text_of(told)
    assert (await core.get_task(task.id)).state is S.BLOCKED
    assert [q.id for q in await core.pending_interventions(task.id)] == [iv.id]
    assert has_controls(await message_now(emu, question["ts"], lambda m: True)), "still answerable"
