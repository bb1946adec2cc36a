"""What a user notices when things go wrong: forged requests, 429 storms, restarts, a board
someone unpinned or deleted, a dropped socket, a busy bot, and secrets that must never show."""
from __future__ import annotations

import asyncio
import logging
import secrets

import aiohttp

from bot.emulator import SlackEmulator
from bot.ids import ActionId
from bot.logging_setup import RedactSecrets, setup_logging
from bot.threads import thread_marker
from orchestrator import TaskState
from tests.core.helpers import scripted, wait_state

from .conftest import BOARD, OWNER, Taskpin
from .scenario import (
    asking_agent,
    board_message,
    board_text,
    click_card,
    create_by_slash,
    run_question_to_review,
    thread_of,
    wait_board,
    wait_thread,
)

S = TaskState


def top_level(emu) -> list[dict]:
    return emu.messages(BOARD)


def dispatch_messages(emu, task_id: int) -> list[dict]:
    return [m for m in top_level(emu) if m.get("metadata") == thread_marker(task_id)]


def board_messages(emu) -> list[dict]:
    """Every top-level message that is (or was) a board: the bot's messages titled like the board."""
    return [m for m in top_level(emu) if m.get("blocks") and m["blocks"][0].get("block_id") == "board_header"]


async def healthz(port: int) -> tuple[int, dict]:
    async with aiohttp.ClientSession() as http:
        async with http.get(f"http://127.0.0.1:{port}/healthz") as resp:
            return resp.status, await resp.json()


# ---- 1. HTTP mode: signatures, health -------------------------------------------------------------

async def test_forged_or_stale_deliveries_are_refused_and_change_nothing(emu, taskpin):
    runtime = await taskpin.start(asking_agent(), socket=False)
    core = taskpin.core
    task_id = await create_by_slash(emu, core, "A real task")
    await wait_board(emu, lambda t: "A real task" in t, what="card on the board")
    board_ts = board_message(emu)["ts"]
    url = f"http://127.0.0.1:{runtime.port}/slack/events"
    calls_before, ephemerals_before, posts_before = len(emu.calls), len(emu.ephemerals()), len(emu.response_url_posts)

    for signature in ("bad", "stale"):
        emu.set_request_url(url, signature=signature)
        ack = await emu.slash_command(OWNER, "/task", f"forged task ({signature})", expect_ack=False)
        assert (ack.acked, ack.http_status) == (False, 401)
        ack = await emu.click_button(OWNER, BOARD, board_ts, f"task_dispatch:{task_id}", str(task_id),
                                     expect_ack=False)
        assert (ack.acked, ack.http_status) == (False, 401)

    await asyncio.sleep(0.5)    # anything a forged request had started would show by now
    assert [t.title for t in await core.list_tasks()] == ["A real task"]
    assert (await core.get_task(task_id)).state is S.BACKLOG
    assert len(emu.ephemerals()) == ephemerals_before and len(emu.response_url_posts) == posts_before
    assert not [c for c in emu.calls[calls_before:] if c.method != "chat.update"], "a forged request made calls"

    emu.set_request_url(url)     # the genuine Slack still gets through
    await create_by_slash(emu, core, "Second real task")
    assert len(await core.list_tasks()) == 2


async def test_healthz_answers_json_in_http_mode(emu, taskpin):
    runtime = await taskpin.start(socket=False)
    status, body = await healthz(runtime.port)
    assert status == 200 and body["ok"] is True and body["database"] == "ok"


async def test_healthz_answers_json_in_socket_mode(emu, taskpin):
    runtime = await taskpin.start()
    assert runtime.port
    status, body = await healthz(runtime.port)
    assert status == 200 and body["ok"] is True and body["slack"] == "connected"


async def dispatch_until_asked(emu, core, task_id: int) -> tuple[str, str]:
    """Dispatch from the board and wait for the agent's question; (board ts, thread ts)."""
    await click_card(emu, OWNER, ActionId.DISPATCH, task_id)
    await wait_state(core, task_id, S.BLOCKED)
    await wait_thread(emu, task_id, "Which greeting")
    return board_message(emu)["ts"], thread_of(emu, task_id)[0]


# ---- 3. restarts --------------------------------------------------------------------------------

async def test_restart_while_a_question_waits_reuses_the_board_and_the_thread(emu, taskpin):
    await taskpin.start(asking_agent())
    core = taskpin.core
    task_id = await create_by_slash(emu, core)
    board_ts, thread_ts = await dispatch_until_asked(emu, core, task_id)

    await taskpin.stop()
    edits_before = len(emu.edits(BOARD, board_ts))
    await taskpin.start(asking_agent())
    core = taskpin.core

    # This agent cannot resume: the task fails "interrupted by restart", said in the same thread.
    await wait_state(core, task_id, S.FAILED)
    await wait_thread(emu, task_id, "restart")
    await wait_board(emu, lambda t: "Failed" in t, what="the failure on the board")
    assert board_message(emu)["ts"] == board_ts and len(emu.pinned(BOARD)) == 1
    assert len(board_messages(emu)) == 1
    assert len(emu.edits(BOARD, board_ts)) > edits_before

    # Retry and dispatch again: still the same thread, no second dispatch message.
    await click_card(emu, OWNER, ActionId.RETRY, task_id)
    await wait_state(core, task_id, S.BACKLOG)
    await click_card(emu, OWNER, ActionId.DISPATCH, task_id)
    await wait_state(core, task_id, S.BLOCKED)
    await emu.wait_for(lambda: sum("Which greeting" in emu.text_of(m) for m in emu.thread(BOARD, thread_ts)) == 2,
                       timeout=6)
    assert len(dispatch_messages(emu, task_id)) == 1
    assert board_message(emu)["ts"] == board_ts and len(board_messages(emu)) == 1


async def test_restart_with_only_backlog_tasks(emu, taskpin):
    await taskpin.start(asking_agent())
    first = await create_by_slash(emu, taskpin.core, "First backlog task")
    await create_by_slash(emu, taskpin.core, "Second backlog task")
    await wait_board(emu, lambda t: "Second backlog task" in t, what="both cards")
    board_ts = board_message(emu)["ts"]
    count = len(top_level(emu))

    await taskpin.stop()
    await taskpin.start(asking_agent())
    await wait_board(emu, lambda t: "First backlog task" in t and "Second backlog task" in t, what="both cards")
    assert board_message(emu)["ts"] == board_ts and len(emu.pinned(BOARD)) == 1
    assert len(top_level(emu)) == count, "a restart posted something"
    await run_question_to_review(emu, taskpin.core, first)     # the old card's buttons work
    assert len(dispatch_messages(emu, first)) == 1 and len(board_messages(emu)) == 1


async def test_a_resumable_agent_continues_its_session_after_a_restart(emu, taskpin, tmp_path):
    steps = [{"emit": {"type": "session", "id": "sess-42"}},
             {"echo_env": ["TASKPIN_RESUME_SESSION"]},
             {"ask": {"id": "q1", "kind": "question", "prompt": "Which greeting should I use?",
                      "options": [{"id": "hi", "label": "Hi"}, {"id": "hello", "label": "Hello"}]}},
             {"write_file": {"path": "greeting.txt", "content": "hello\n"}},
             {"finish": "wrote greeting.txt"}]
    agents = {"bot": scripted(steps, resume=True)}
    await taskpin.start(agents)
    core = taskpin.core
    task_id = await create_by_slash(emu, core)
    board_ts, thread_ts = await dispatch_until_asked(emu, core, task_id)

    await taskpin.stop()
    await taskpin.start(agents)
    core = taskpin.core
    # The session resumes (the agent is told which one) and asks again, in the same thread.
    await emu.wait_for(lambda: sum("Which greeting" in emu.text_of(m) for m in emu.thread(BOARD, thread_ts)) == 2,
                       timeout=8)
    assert any("TASKPIN_RESUME_SESSION=sess-42" in line for line in core.tail_log(task_id, 200))
    assert (await core.get_task(task_id)).state is S.BLOCKED
    await emu.user_message(OWNER, BOARD, "hello", thread_ts=thread_ts)
    task = await wait_state(core, task_id, S.AWAITING_REVIEW)
    assert task.diff and task.diff.files == ("greeting.txt",)
    await wait_thread(emu, task_id, "ready for review")
    await wait_board(emu, lambda t: "review" in t.lower(), what="the card in review")
    assert len(dispatch_messages(emu, task_id)) == 1
    assert board_message(emu)["ts"] == board_ts and len(emu.pinned(BOARD)) == 1 and len(board_messages(emu)) == 1


# ---- 4. someone unpins or deletes the board -----------------------------------------------------

async def test_an_unpinned_board_is_pinned_again(emu, taskpin):
    await taskpin.start()
    board_ts = board_message(emu)["ts"]
    await emu.user_unpin(OWNER, BOARD, board_ts)
    await emu.wait_for(lambda: [m["ts"] for m in emu.pinned(BOARD)] == [board_ts], timeout=5)
    await create_by_slash(emu, taskpin.core, "After the unpin")
    await wait_board(emu, lambda t: "After the unpin" in t, what="the board still updated")
    assert len(board_messages(emu)) == 1


async def test_a_deleted_board_is_posted_and_pinned_again(emu, taskpin):
    await taskpin.start()
    await create_by_slash(emu, taskpin.core, "Before the delete")
    await wait_board(emu, lambda t: "Before the delete" in t, what="the card")
    old_ts = board_message(emu)["ts"]
    await emu.user_delete(OWNER, BOARD, old_ts)
    await emu.wait_for(lambda: emu.pinned(BOARD) and emu.pinned(BOARD)[0]["ts"] != old_ts, timeout=5)
    new_ts = board_message(emu)["ts"]
    assert len(emu.pinned(BOARD)) == 1 and "Before the delete" in board_text(emu)
    await create_by_slash(emu, taskpin.core, "After the delete")
    await wait_board(emu, lambda t: "After the delete" in t, what="the new board updated")
    assert board_message(emu)["ts"] == new_ts and len(board_messages(emu)) == 1

    # The new location survives a restart: no third board.
    await taskpin.stop()
    await taskpin.start()
    await create_by_slash(emu, taskpin.core, "After the restart")
    await wait_board(emu, lambda t: "After the restart" in t, what="the board after the restart")
    assert board_message(emu)["ts"] == new_ts and len(board_messages(emu)) == 1 and len(emu.pinned(BOARD)) == 1


# ---- 6. Socket Mode reconnects --------------------------------------------------------------------

async def test_socket_mode_reconnects_after_a_disconnect(emu, taskpin):
    await taskpin.start()
    opened = emu.socket_connections
    await emu.disconnect_socket()
    await emu.wait_for(lambda: emu.socket_connections > opened and emu.dispatcher.socket.live, timeout=10)
    await create_by_slash(emu, taskpin.core, "After the reconnect")
    await wait_board(emu, lambda t: "After the reconnect" in t, what="the card after the reconnect")
    status, body = await healthz(taskpin.runtime.port)
    assert status == 200 and body["slack"] == "connected"


# ---- 2. a 429 storm in the middle of the journey ----------------------------------------------------

async def test_a_429_storm_in_the_middle_of_the_journey_loses_nothing(emu, taskpin, caplog):
    caplog.set_level(logging.INFO)
    await taskpin.start(asking_agent())
    core = taskpin.core
    task_id = await create_by_slash(emu, core)
    await click_card(emu, OWNER, ActionId.DISPATCH, task_id)

    # Everything taskpin posts or edits is refused for ~3 s; every other call for the first second.
    emu.force_rate_limit("chat.update", 3, retry_after=1)
    emu.force_rate_limit("chat.postMessage", 3, retry_after=1)
    emu.force_rate_limit("*", 1, retry_after=1)
    during = await create_by_slash(emu, core, "Created during the storm")   # acks need no Web API call
    await wait_state(core, task_id, S.BLOCKED)

    question = await wait_thread(emu, task_id, "Which greeting", timeout=10)
    thread_ts, _ = thread_of(emu, task_id)
    await emu.user_message(OWNER, BOARD, "hello please", thread_ts=thread_ts)
    await wait_state(core, task_id, S.AWAITING_REVIEW)
    await wait_thread(emu, task_id, "ready for review", timeout=10)
    await click_card(emu, OWNER, ActionId.APPROVE, task_id, timeout=10)
    await wait_state(core, task_id, S.COMPLETED)
    await wait_thread(emu, task_id, "completed", timeout=10)

    assert emu.ratelimited_count("chat.update") and emu.ratelimited_count("chat.postMessage"), "no storm happened"
    # The board ends on the final state, on the same message.
    await wait_board(emu, lambda t: "Completed (1)" in t or "1 completed" in t, what="completed on the board")
    await wait_board(emu, lambda t: "Created during the storm" in t, what="the card created during the storm")
    assert len(emu.pinned(BOARD)) == 1 and len(board_messages(emu)) == 1
    # Every thread message arrived, once, in order; the question was closed with the answer.
    texts = [emu.text_of(m) for m in emu.thread(BOARD, thread_ts)]
    order = [next(i for i, t in enumerate(texts) if needle in t)
             for needle in ("Which greeting", "ready for review", "completed")]
    assert order == sorted(order), texts
    assert sum("Which greeting" in t for t in texts) == 1 and sum("ready for review" in t for t in texts) == 1
    # The question's edit waits for chat.update budget the board does not need (paced, not lost).
    resolved = await emu.wait_for(lambda: "hello please" in emu.text_of(emu.message(BOARD, question["ts"]))
                                  and emu.message(BOARD, question["ts"]), timeout=15)
    assert not [b for b in resolved.get("blocks", []) if b.get("type") == "actions"], "stale buttons left"
    failed = [c for c in emu.calls if not c.ok and c.http_status != 429]
    assert not failed, [(c.method, c.error) for c in failed]
    # Nothing crashed or was given up on.
    bad = [r for r in caplog.records if r.name.startswith(("bot", "orchestrator", "slack_bolt"))
           and r.levelno >= logging.WARNING]
    assert not bad, [r.getMessage() for r in bad]
    status, body = await healthz(taskpin.runtime.port)
    assert status == 200 and body["ok"]
    assert (await core.get_task(during)).state is S.BACKLOG


# ---- 7. acks stay fast while agents work -----------------------------------------------------------

async def test_commands_and_clicks_are_acked_and_work_while_ten_agents_talk(emu, taskpin):
    chatty = scripted([step for _ in range(150) for step in ({"print": "working on it " * 5}, {"sleep": 0.02})]
                      + [{"finish": "done"}])
    await taskpin.start({"bot": chatty}, max_concurrent_sessions=11)
    core = taskpin.core
    busy = [await core.create_task(prompt=f"busy task {i}", owner=OWNER) for i in range(10)]
    for task in busy:
        await core.dispatch(task.id, actor=OWNER)
    await emu.wait_for(lambda: len(core._runners) == 10, timeout=10)
    await asyncio.sleep(0.5)     # the agents are past their start-up and talking

    latencies = []
    for i in range(3):
        ack = await emu.slash_command(OWNER, "/task", f"Created while busy {i}")
        latencies.append(ack.latency)
    task_id = (await core.list_tasks())[-1].id
    ack = await click_card(emu, OWNER, ActionId.DISPATCH, task_id)
    latencies.append(ack.latency)
    assert len(core._runners) >= 10, "the agents finished before the acks were measured"
    assert all(a is not None and a < 3 for a in latencies), latencies   # Slack's deadline; speed: bench/b3_ack.py
    titles = {t.title for t in await core.list_tasks()}
    assert {f"Created while busy {i}" for i in range(3)} <= titles, titles
    await wait_state(core, task_id, S.IN_PROGRESS)


# ---- 8. secrets never show ------------------------------------------------------------------------

async def test_no_secret_reaches_slack_or_the_logs(tmp_path, git_repo, caplog):
    bot_token = "xoxb-" + "-".join(secrets.token_hex(6) for _ in range(3))
    app_token = "xapp-1-A" + secrets.token_hex(8) + "-" + secrets.token_hex(16)
    signing_secret = secrets.token_hex(16)
    caplog.set_level(logging.DEBUG)
    async with SlackEmulator(bot_token=bot_token, app_token=app_token, signing_secret=signing_secret) as emu:
        tp = Taskpin(emu, tmp_path, git_repo)
        try:
            await tp.start(asking_agent(), slack={"SLACK_SIGNING_SECRET": signing_secret})
            task_id = await create_by_slash(emu, tp.core)
            await run_question_to_review(emu, tp.core, task_id)
            await click_card(emu, OWNER, ActionId.APPROVE, task_id)
            await wait_state(tp.core, task_id, S.COMPLETED)
            await emu.disconnect_socket()       # reconnecting calls apps.connections.open with the app token
            await create_by_slash(emu, tp.core, "after a reconnect")
            await tp.stop()
            await tp.start(asking_agent(), socket=False, slack={"SLACK_SIGNING_SECRET": signing_secret})
            await create_by_slash(emu, tp.core, "in HTTP mode")
        finally:
            await tp.stop()
        stored = repr([emu.ws.channels, emu.ws.ephemerals, emu.ws.views, emu.ws.edit_history,
                       emu.response_url_posts, [c.params for c in emu.calls]])
    assert emu.count("chat.postMessage")
    assert any(r.name.startswith("slack_sdk") and "Sending a request" in r.getMessage() for r in caplog.records), \
        "slack_sdk's debug logs were not captured"
    logged = caplog.text + "\n".join(r.getMessage() for r in caplog.records)
    for name, secret in (("bot token", bot_token), ("app token", app_token), ("signing secret", signing_secret)):
        assert secret not in stored, f"the {name} is in a Slack message"
        assert secret not in logged, f"the {name} is in the logs"


def test_the_log_filter_redacts_tokens_from_every_logger(capsys):
    import io
    bot_token, app_token, other = "xoxb-1234-5678-abcdefghijkl", "xapp-1-A0-999-fedcba", "s3cr3t-signing-value"
    root = logging.getLogger()
    saved = root.handlers[:], root.level
    stream = io.StringIO()
    try:
        setup_logging("DEBUG", secrets=[bot_token, app_token, other])
        root.handlers[0].setStream(stream)
        logging.getLogger("slack_sdk.web.async_base_client").debug(
            "Sending a request - url: x, headers: %s", {"Authorization": f"Bearer {bot_token}"})
        logging.getLogger("slack_bolt.App").info("token=%s secret=%s", app_token, other)
        logging.getLogger("bot.anything").warning("unrelated token shape xoxp-42-43-abc")
        try:
            raise RuntimeError(f"call failed with {bot_token}")
        except RuntimeError:
            logging.getLogger("bot.runtime").exception("boom")
    finally:
        root.handlers[:], _ = saved
        root.setLevel(saved[1])
    out = stream.getvalue()
    assert "Sending a request" in out and "boom" in out and "[redacted]" in out
    for secret in (bot_token, app_token, other, "xoxp-42-43-abc"):
        assert secret not in out
    assert RedactSecrets([bot_token]).redact(f"a {bot_token} b") == "a [redacted] b"


async def test_a_restart_during_a_429_storm_still_comes_up_on_the_same_board(emu, taskpin):
    await taskpin.start()
    await create_by_slash(emu, taskpin.core, "Before the storm")
    await wait_board(emu, lambda t: "Before the storm" in t, what="the card")
    board_ts = board_message(emu)["ts"]
    await taskpin.stop()

    emu.force_rate_limit("*", 2, retry_after=1)
    await taskpin.start()                                   # does not give up on a 429
    await create_by_slash(emu, taskpin.core, "After the storm")
    await wait_board(emu, lambda t: "After the storm" in t, timeout=8, what="the board after the storm")
    assert board_message(emu)["ts"] == board_ts and len(board_messages(emu)) == 1 and len(emu.pinned(BOARD)) == 1


async def test_a_board_deleted_and_unpinned_during_a_429_storm_comes_back(emu, taskpin):
    await taskpin.start()
    await create_by_slash(emu, taskpin.core, "Still here")
    await wait_board(emu, lambda t: "Still here" in t, what="the card")
    old_ts = board_message(emu)["ts"]

    emu.force_rate_limit("chat.postMessage", 2, retry_after=1)
    emu.force_rate_limit("pins.*", 2, retry_after=1)
    await emu.user_delete(OWNER, BOARD, old_ts)
    await emu.wait_for(lambda: emu.pinned(BOARD), timeout=8)
    new_ts = board_message(emu)["ts"]
    assert new_ts != old_ts and "Still here" in board_text(emu) and len(board_messages(emu)) == 1

    emu.force_rate_limit("pins.*", 2, retry_after=1)
    await emu.user_unpin(OWNER, BOARD, new_ts)
    await emu.wait_for(lambda: [m["ts"] for m in emu.pinned(BOARD)] == [new_ts], timeout=8)
    await create_by_slash(emu, taskpin.core, "And updated")
    await wait_board(emu, lambda t: "And updated" in t, what="the board updated")
    assert len(board_messages(emu)) == 1


async def test_a_question_cancelled_by_a_restart_loses_its_buttons(emu, taskpin):
    await taskpin.start(asking_agent())
    task_id = await create_by_slash(emu, taskpin.core)
    await click_card(emu, OWNER, ActionId.DISPATCH, task_id)
    question = await wait_thread(emu, task_id, "Which greeting")
    await taskpin.stop()
    await taskpin.start(asking_agent())
    await wait_state(taskpin.core, task_id, S.FAILED)
    await emu.wait_for(lambda: not [b for b in emu.message(BOARD, question["ts"]).get("blocks", [])
                                    if b.get("type") == "actions"], timeout=3)
