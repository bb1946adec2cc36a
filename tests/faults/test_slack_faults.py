"""The fault suite: Slack answers 5xx (HTML, JSON, plain text), hangs past the client's timeout,
goes away for seconds with the socket dropped, refuses reconnects or refuses a message. Through
each, the owner still gets the thread root, the agent's question and the result, in order and
once each; the board ends on the final state; /healthz says degraded, then ok; no traceback.
Real runtime, the project's emulator with its fault layer, real agent subprocesses."""
from __future__ import annotations

import asyncio

import pytest

from bot.ids import ActionId
from bot.threads import thread_marker
from orchestrator import OutboxStatus, TaskState
from tests.core.helpers import wait_state
from tests.e2e.conftest import BOARD, OWNER
from tests.e2e.scenario import (
    asking_agent,
    click_card,
    create_by_slash,
    thread_of,
    wait_board,
    wait_thread,
)

from .conftest import ROUNDS, healthz, wait_health

S = TaskState
QUESTION, REVIEW, RESULT = "Which greeting", "ready for review", "is completed"
SLOW = 15.0   # generous waits: messages arrive after the fault clears and the backoff ends


def roots(emu, task_id: int) -> list[dict]:
    return [m for m in emu.messages(BOARD) if m.get("metadata") == thread_marker(task_id)]


def assert_thread_complete(emu, task_id: int) -> list[str]:
    """One thread root; the question, the review and the result once each, in that order."""
    assert len(roots(emu, task_id)) == 1, [emu.text_of(m) for m in roots(emu, task_id)]
    texts = [emu.text_of(m) for m in thread_of(emu, task_id)[1]]
    for needle in (QUESTION, REVIEW, RESULT):
        assert sum(needle in t for t in texts) == 1, (needle, texts)
    order = [next(i for i, t in enumerate(texts) if needle in t) for needle in (QUESTION, REVIEW, RESULT)]
    assert order == sorted(order), texts
    return texts


async def journey(emu, taskpin, fault_on, fault_off, *, dispatch_by_click: bool = True,
                  expect_degraded: bool = True) -> int:
    """Create, then under the fault dispatch (the root and the question wait); after it the owner
    answers; under the fault again the review is written; after it, approve and the result."""
    core = taskpin.core
    task_id = await create_by_slash(emu, core, "Survive the fault")
    await wait_board(emu, lambda t: "Survive the fault" in t, what="the card")

    await fault_on()
    if dispatch_by_click:
        await click_card(emu, OWNER, ActionId.DISPATCH, task_id)
    else:
        await core.dispatch(task_id, actor=OWNER)
    await wait_state(core, task_id, S.BLOCKED)
    if expect_degraded:
        body = await wait_health(emu, taskpin.runtime.port, ok=False)
        assert "slack" in body and body["slack"] != "connected", body
    await fault_off()

    question = await wait_thread(emu, task_id, QUESTION, timeout=SLOW)
    await emu.wait_socket(timeout=SLOW)
    await fault_on()
    await emu.user_message(OWNER, BOARD, "hello please", thread_ts=thread_of(emu, task_id)[0])
    await wait_state(core, task_id, S.AWAITING_REVIEW)
    await fault_off()

    await wait_thread(emu, task_id, REVIEW, timeout=SLOW)
    await emu.wait_socket(timeout=SLOW)
    await click_card(emu, OWNER, ActionId.APPROVE, task_id, timeout=SLOW)
    await wait_state(core, task_id, S.COMPLETED)
    await wait_thread(emu, task_id, RESULT, timeout=SLOW)

    # The board converges on the final state; the question lost its buttons (edited, however late).
    await wait_board(emu, lambda t: "Completed (1)" in t or "1 completed" in t, timeout=SLOW,
                     what="the completed card")
    await emu.wait_for(lambda: "hello please" in emu.text_of(emu.message(BOARD, question["ts"])), timeout=SLOW)
    assert not [b for b in emu.message(BOARD, question["ts"]).get("blocks", []) if b.get("type") == "actions"]
    assert_thread_complete(emu, task_id)
    await wait_health(emu, taskpin.runtime.port, ok=True)
    async def outbox_empty():   # Slack shows a message a moment before taskpin records its ts
        return not await core.outbox.pending()
    await emu.wait_for(outbox_empty, timeout=SLOW)
    return task_id


HTTP_ERRORS = [(500, "html"), (502, "html"), (503, "json"), (504, "text"), (502, "json")]


@pytest.mark.parametrize("status,body", HTTP_ERRORS, ids=[f"{s}-{b}" for s, b in HTTP_ERRORS])
async def test_every_5xx_of_the_web_api_delays_but_loses_nothing(emu, taskpin, taskpin_log, status, body):
    await taskpin.start(asking_agent())
    for _ in range(ROUNDS):
        async def on():
            emu.faults.http_error("chat.*", status, body=body)
            emu.faults.http_error("auth.test", status, body=body)

        async def off():
            emu.faults.clear()

        await journey(emu, taskpin, on, off)
        assert emu.faults.count("chat.postMessage") and emu.faults.count("chat.update"), "no fault fired"
    taskpin_log.assert_no_traceback()


async def test_calls_hanging_past_the_client_timeout_post_each_message_once(emu, taskpin, taskpin_log):
    """chat.postMessage takes effect but its answer never comes in time (the worst case for
    duplicates): taskpin finds the message by its metadata marker instead of posting it again."""
    await taskpin.start(asking_agent())

    async def on():
        emu.faults.hang("chat.postMessage", hang_s=3, process=True, times=2)
        emu.faults.hang("chat.update", hang_s=3, seconds=1.5)
        emu.faults.hang("auth.test", hang_s=3, seconds=1.5)

    async def off():
        await emu.wait_for(lambda: not emu.faults.active, timeout=SLOW)

    for _ in range(ROUNDS):
        await journey(emu, taskpin, on, off)
    assert emu.count("conversations.replies") + emu.count("conversations.history"), "no message was looked up"
    taskpin_log.assert_no_traceback()


async def test_an_outage_with_the_socket_dropped_loses_nothing(emu, taskpin, taskpin_log):
    """Connections refused for seconds, the Socket Mode connection dropped: everything said in
    the meantime arrives once Slack is back, and /healthz says why it was degraded."""
    await taskpin.start(asking_agent())
    port = taskpin.runtime.port
    seen = {}

    async def on():
        await emu.faults.outage(2.0)
        seen["body"] = await wait_health(emu, port, ok=False)

    async def off():
        await emu.wait_for(lambda: not emu.faults.active, timeout=SLOW)

    for _ in range(ROUNDS):
        opened = emu.socket_connections
        await journey(emu, taskpin, on, off, dispatch_by_click=False, expect_degraded=False)
        assert emu.socket_connections > opened, "taskpin never reconnected"
    assert seen["body"]["slack"] in ("disconnected",) or seen["body"]["slack"].startswith("web api unreachable")
    taskpin_log.assert_no_traceback()


async def test_healthz_in_http_mode_follows_the_web_api(emu, taskpin, taskpin_log):
    runtime = await taskpin.start(socket=False)
    status, body = await healthz(runtime.port)
    assert status == 200 and body["slack"] == "ok"
    await emu.faults.outage(1.5)
    body = await wait_health(emu, runtime.port, ok=False)
    assert body["slack"].startswith("web api unreachable: "), body
    body = await wait_health(emu, runtime.port, ok=True)
    assert body["slack"] == "ok"
    emu.faults.http_error("auth.test", 502, body="html", seconds=1.5)
    body = await wait_health(emu, runtime.port, ok=False)
    assert body["slack"] == "web api unreachable: HTTP 502", body
    await wait_health(emu, runtime.port, ok=True)
    emu.faults.refuse("auth.test", "token_revoked", seconds=1.5)
    body = await wait_health(emu, runtime.port, ok=False)
    assert body["slack"] == "web api refuses the token: token_revoked", body
    await wait_health(emu, runtime.port, ok=True)
    taskpin_log.assert_no_traceback()


async def test_reconnects_refused_for_a_while_then_the_journey_goes_on(emu, taskpin, taskpin_log):
    await taskpin.start(asking_agent())
    core = taskpin.core
    task_id = await create_by_slash(emu, core, "After the drop")
    opened = emu.socket_connections
    await emu.faults.drop_socket(refuse_for=2.0)
    await core.dispatch(task_id, actor=OWNER)           # the Web API still works: the question goes out
    await wait_thread(emu, task_id, QUESTION, timeout=SLOW)
    body = await wait_health(emu, taskpin.runtime.port, ok=False)
    assert body["slack"] == "disconnected", body
    assert emu.faults.count("apps.connections.open"), "taskpin did not try to reconnect"
    await emu.wait_socket(timeout=SLOW)
    assert emu.socket_connections > opened
    await emu.user_message(OWNER, BOARD, "hello please", thread_ts=thread_of(emu, task_id)[0])
    await wait_state(core, task_id, S.AWAITING_REVIEW)
    await wait_thread(emu, task_id, REVIEW, timeout=SLOW)
    await wait_health(emu, taskpin.runtime.port, ok=True)
    taskpin_log.assert_no_traceback()


async def test_a_question_slack_refuses_for_its_blocks_arrives_as_plain_text(emu, taskpin, taskpin_log):
    await taskpin.start(asking_agent())
    core = taskpin.core
    task_id = await create_by_slash(emu, core, "Odd blocks")
    await core.dispatch(task_id, actor=OWNER)
    await emu.wait_for(lambda: roots(emu, task_id), timeout=SLOW)
    emu.faults.refuse("chat.postMessage", "invalid_blocks", times=1)   # the next post: the question
    question = await wait_thread(emu, task_id, QUESTION, timeout=SLOW)
    assert not question.get("blocks"), "the plain-text version has no blocks"
    [iv] = await core.pending_interventions(task_id)
    for _ in range(500):   # the row is marked once Slack's answer is back, a moment after the post shows
        row = await core.outbox.get(f"iv:{iv.id}")
        if row.status is not OutboxStatus.PENDING:
            break
        await asyncio.sleep(0.01)
    assert row.status is OutboxStatus.FAILED and "invalid_blocks" in row.error and row.ref == question["ts"]
    assert len(taskpin_log.warnings("invalid_blocks")) == 1, taskpin_log.text
    # The owner answers in the thread; the thread goes on.
    await emu.user_message(OWNER, BOARD, "hello please", thread_ts=thread_of(emu, task_id)[0])
    await wait_thread(emu, task_id, REVIEW, timeout=SLOW)
    taskpin_log.assert_no_traceback()


async def test_a_message_refused_for_good_does_not_block_its_thread(emu, taskpin, taskpin_log):
    await taskpin.start(asking_agent())
    core = taskpin.core
    task_id = await create_by_slash(emu, core, "Refused once")
    await core.dispatch(task_id, actor=OWNER)
    await emu.wait_for(lambda: roots(emu, task_id), timeout=SLOW)
    emu.faults.refuse("chat.postMessage", "restricted_action", times=1)   # the question
    await wait_state(core, task_id, S.BLOCKED)
    [iv] = await core.pending_interventions(task_id)
    row = await emu.wait_for(lambda: _done(core, f"iv:{iv.id}"), timeout=SLOW)
    assert row.status is OutboxStatus.FAILED and row.error == "restricted_action"
    await core.cancel(task_id, actor=OWNER)
    await wait_thread(emu, task_id, "failed", timeout=SLOW)    # the result still arrives
    assert len(taskpin_log.warnings("restricted_action")) == 1, taskpin_log.text
    taskpin_log.assert_no_traceback()


async def _done(core, key: str):
    row = await core.outbox.get(key)
    return row if row is not None and row.done else None


async def test_a_restart_during_an_outage_sends_what_was_kept(emu, taskpin, taskpin_log):
    """Messages written while Slack was down survive a restart in the store and go out after it."""
    await taskpin.start(asking_agent())
    core = taskpin.core
    task_id = await create_by_slash(emu, core, "Kept across a restart")
    await wait_board(emu, lambda t: "Kept across a restart" in t, what="the card")
    await emu.faults.outage(30)
    await core.dispatch(task_id, actor=OWNER)
    await wait_state(core, task_id, S.BLOCKED)
    await emu.wait_for(lambda: _pending_kinds(core), timeout=SLOW)
    await taskpin.stop()
    assert not roots(emu, task_id)
    emu.faults.down_until = 0
    await emu._listen_again()
    emu.faults.clear()
    await taskpin.start(asking_agent())
    # The agent could not resume: its question is closed and the task failed, all in one thread.
    await wait_thread(emu, task_id, QUESTION, timeout=SLOW)
    await wait_thread(emu, task_id, "failed", timeout=SLOW)
    assert len(roots(emu, task_id)) == 1
    texts = [emu.text_of(m) for m in thread_of(emu, task_id)[1]]
    assert sum(QUESTION in t for t in texts) == 1, texts
    await wait_board(emu, lambda t: "Failed" in t and str(task_id) in t, timeout=SLOW, what="the failed card")
    taskpin_log.assert_no_traceback()


async def _pending_kinds(core):
    kinds = {row.kind for row in await core.outbox.pending()}
    return {"thread_root", "intervention"} <= kinds and kinds


async def test_listener_calls_failing_during_an_outage_are_one_line_each(emu, taskpin, taskpin_log):
    """/task with no text opens a modal, a stranger's thread reply is answered privately, the Home
    tab is published: with those calls failing, each failure is one log line, no traceback."""
    await taskpin.start(asking_agent())
    core = taskpin.core
    task_id = await create_by_slash(emu, core, "Listeners under fire")
    await core.dispatch(task_id, actor=OWNER)
    await wait_state(core, task_id, S.BLOCKED)
    await wait_thread(emu, task_id, QUESTION, timeout=SLOW)
    for method in ("views.*", "chat.postEphemeral"):
        emu.faults.http_error(method, 503, body="html")
    await emu.slash_command(OWNER, "/task", "")
    await emu.user_message("U_OTHER", BOARD, "let me answer", thread_ts=thread_of(emu, task_id)[0])
    await emu.open_home(OWNER)
    await emu.wait_for(lambda: emu.faults.count("views.open") and emu.faults.count("chat.postEphemeral")
                       and emu.faults.count("views.publish"), timeout=SLOW)
    for line in ("could not open the create-task form: HTTP 503", "could not send an ephemeral message: HTTP 503",
                 "could not publish the Home tab for U_OWNER: HTTP 503"):
        await emu.wait_for(lambda line=line: taskpin_log.warnings(line), timeout=SLOW)
        assert len(taskpin_log.warnings(line)) == 1, taskpin_log.text
    taskpin_log.assert_no_traceback()
    assert (await core.get_task(task_id)).state is S.BLOCKED, "a stranger's reply was taken as the answer"


@pytest.mark.parametrize("status,body", [(405, "html"), (500, "html"), (405, "text")])
async def test_start_up_against_html_errors_on_the_board_then_it_converges(emu, taskpin, taskpin_log, status, body):
    """A restart while pins.list and chat.update answer an HTML (or plain-text) error page: taskpin
    starts anyway (no `exc.response.get` on a str) and the board catches up once Slack is back."""
    await taskpin.start()
    task_id = await create_by_slash(emu, taskpin.core, "Before the restart")
    await wait_board(emu, lambda t: "Before the restart" in t, what="the card")
    board_ts = emu.pinned(BOARD)[0]["ts"]
    await taskpin.stop()
    emu.faults.http_error("pins.list", status, body=body, seconds=1.5)
    await taskpin.start()
    assert emu.faults.count("pins.list"), "the start-up did not meet the fault"
    emu.faults.http_error("chat.update", status, body=body, seconds=1.5)
    await taskpin.core.cancel(task_id, actor=OWNER)
    await wait_board(emu, lambda t: "Failed" in t, timeout=SLOW, what="the cancelled card")
    assert [m["ts"] for m in emu.pinned(BOARD)] == [board_ts]
    assert len(emu.pinned(BOARD)) == 1
    taskpin_log.assert_no_traceback()
