"""User interactions end to end: /task and its modal, bad input, the message shortcut, the Home
tab, card buttons (cancel, request changes, concurrent dispatch) and follow-up messages.

Everything runs for real: the taskpin runtime, the Slack emulator, scripted agent subprocesses
and a git repository. Assertions are about what a user would notice.
"""
from __future__ import annotations

import asyncio
import json

from bot.ids import ActionId, CallbackId, make_action_id
from bot.listeners.commands import HELP
from orchestrator import TaskState
from orchestrator.engine import MAX_PROMPT
from tests.core.helpers import pid_alive, scripted, wait_state, wait_until

from .conftest import APPROVER, BOARD, OTHER, OWNER
from .scenario import board_message, wait_board
from .ui import (
    buttons,
    click_card,
    ephemeral,
    every_ack_is_fast,  # noqa: F401  (autouse)
    fast,
    in_thread,
    lines_of_type,
    slash_task,
    thread_ts,
)

S = TaskState
HOSTILE = "<!channel> *x* <@U_OTHER> &<>"
# How Slack shows it once escaped: entities for & < >, look-alikes for the formatting characters.
LITERAL = "&lt;!channel&gt; \u2217x\u2217 &lt;@U\u02cdOTHER&gt; &amp;&lt;&gt;"


def two_of_each(tmp_path, git_repo) -> dict:
    """Settings overrides with two repositories and two agents to choose from."""
    return dict(repos={"app": {"path": str(git_repo), "base_branch": "main"},
                       "tools": {"path": str(git_repo), "base_branch": "main"}})


# ---- /task and the create modal ------------------------------------------------------------

async def test_task_alone_opens_the_modal_and_bad_fields_are_shown_in_it(emu, taskpin, tmp_path, git_repo):
    await taskpin.start({"claude": scripted([{"finish": "ok"}]), "codex": scripted([{"finish": "ok"}])},
                        **two_of_each(tmp_path, git_repo))
    core = taskpin.core
    fast(await emu.slash_command(OWNER, "/task", ""))
    [modal] = emu.views(OWNER)
    assert modal["callback_id"] == CallbackId.CREATE_TASK_MODAL
    assert "What should the agent do?" in emu.text_of(modal)

    # A prompt of blanks: Slack submits it; taskpin points at the prompt field.
    ack = fast(await emu.submit_view(OWNER, modal["id"], {"prompt": "   "}))
    assert set(ack.errors) == {"prompt"} and "prompt" in ack.errors["prompt"]
    # A branch name git would refuse: the error is on the base branch field.
    ack = fast(await emu.submit_view(OWNER, modal["id"], {"prompt": "Add a changelog", "base_branch": "bad branch.."}))
    assert set(ack.errors) == {"base_branch"} and "not a valid branch name" in ack.errors["base_branch"]
    assert await core.list_tasks() == []
    assert [v["id"] for v in emu.views(OWNER)] == [modal["id"]], "the modal must stay open to be fixed"

    ack = fast(await emu.submit_view(OWNER, modal["id"], {"prompt": "Add a changelog", "title": "Changelog",
                                                          "repo": "tools", "agent": "codex",
                                                          "base_branch": "main"}))
    assert not ack.errors and emu.views(OWNER) == []
    [task] = await core.list_tasks()
    assert (task.title, task.repo, task.agent, task.owner, task.state) == ("Changelog", "tools", "codex", OWNER,
                                                                           S.BACKLOG)
    note = await ephemeral(emu, OWNER, f"Created {task.short_id}")
    assert "tools" in emu.text_of(note) and "codex" in emu.text_of(note)
    await wait_board(emu, lambda t: "Changelog" in t, what="the new card")
    assert not emu.ephemerals(user=OTHER)


async def test_task_help_and_list_are_private_and_show_only_the_callers_tasks(emu, taskpin):
    await taskpin.start()
    core = taskpin.core
    ack = fast(await emu.slash_command(OWNER, "/task", "help"))
    assert ack.payload["text"] == HELP
    assert "/task list" in emu.text_of(emu.ephemerals(user=OWNER)[-1])

    await slash_task(emu, core, "Fix <b> & *bold* in the header")
    await slash_task(emu, core, "Bob's own task", user=OTHER)
    fast(await emu.slash_command(OWNER, "/task", "list"))
    text = (await ephemeral(emu, OWNER, "Your tasks"))["text"]
    assert "Your tasks" in text and "#1" in text and "backlog" in text
    assert "Bob's own task" not in text and "#2" not in text
    assert "&lt;b&gt; &amp;" in text and "<b>" not in text and "*bold*" not in text
    assert not any("Your tasks" in (e.get("text") or "") for e in emu.ephemerals(user=OTHER))

    fast(await emu.slash_command(APPROVER, "/task", "list"))
    await ephemeral(emu, APPROVER, "no tasks yet")
    assert [m for m in emu.messages(BOARD) if "Your tasks" in emu.text_of(m)] == []   # nothing public
    assert len(await core.list_tasks()) == 2


async def test_bad_quick_task_input_is_explained_privately_and_creates_nothing(emu, taskpin):
    await taskpin.start(allowed_users=[OWNER])
    core = taskpin.core

    fast(await emu.slash_command(OWNER, "/task", "x" * (MAX_PROMPT + 1)))
    note = await ephemeral(emu, OWNER, "limit")
    assert f"{MAX_PROMPT + 1}" in note["text"] and f"{MAX_PROMPT}" in note["text"]

    fast(await emu.slash_command(OTHER, "/task", "Let me in"))
    refusal = await ephemeral(emu, OTHER, "allowed users")
    assert "ask an admin" in refusal["text"]
    fast(await emu.slash_command(OTHER, "/task", ""))          # the modal is refused too
    assert emu.views(OTHER) == []
    await emu.wait_for(lambda: len(emu.ephemerals(user=OTHER)) == 2)
    assert await core.list_tasks() == []

    task = await slash_task(emu, core, "Still works")       # the process keeps working
    assert [t.id for t in await core.list_tasks()] == [task.id] and task.title == "Still works"
    await wait_board(emu, lambda t: "Still works" in t, what="the card after the refusals")
    assert not [m for m in emu.messages(BOARD) if "allowed users" in emu.text_of(m)]


def _everything_posted(emu) -> list[tuple[str, str]]:
    """(where, raw JSON) of every message, reply, ephemeral and Home tab taskpin showed."""
    seen = []
    for top in emu.messages(BOARD):
        seen += [("channel", json.dumps(top))] if top.get("bot_id") else []
        seen += [("thread", json.dumps(r)) for r in emu.thread(BOARD, top["ts"]) if r.get("bot_id")]
    seen += [("ephemeral", json.dumps(e)) for e in emu.ephemerals()]
    seen += [("home", json.dumps(emu.home(u))) for u in (OWNER, OTHER) if emu.home(u)]
    return seen


async def test_hostile_text_is_shown_literally_everywhere_and_pings_nobody(emu, taskpin, tmp_path):
    log = tmp_path / "stdin.log"
    agent = scripted([{"ask": {"id": "q", "kind": "question", "prompt": f"Which? {HOSTILE}",
                               "options": [{"id": "a", "label": "A <!here>"}, {"id": "b", "label": "B"}]}},
                      {"finish": f"done {HOSTILE}"}], env={"SCRIPTED_AGENT_LOG": str(log)})
    await taskpin.start({"bot": agent})
    core = taskpin.core
    task = await slash_task(emu, core, HOSTILE)
    assert task.title == HOSTILE and task.prompt == HOSTILE     # stored exactly as typed
    created = await ephemeral(emu, OWNER, "Created")
    assert LITERAL in created["text"]
    await wait_board(emu, lambda t: LITERAL in t, what="the escaped title on the card")

    await click_card(emu, OWNER, ActionId.DISPATCH, task.id)
    question = await in_thread(emu, task.id, "Which?")
    assert "&lt;!channel&gt;" in emu.text_of(question) and "&lt;!here&gt;" not in emu.text_of(question)
    ts = await thread_ts(emu, task.id)
    fast(await emu.user_message(OWNER, BOARD, f"pick b {HOSTILE}", thread_ts=ts))
    await wait_state(core, task.id, S.AWAITING_REVIEW)
    assert [a["text"] for a in lines_of_type(log, "answer")] == [f"pick b {HOSTILE}"], "the agent gets it as typed"
    assert lines_of_type(log, "prompt")[0]["text"] == HOSTILE
    await in_thread(emu, task.id, "ready for review")
    fast(await emu.open_home(OTHER))
    await emu.wait_for(lambda: emu.home(OTHER))
    await wait_board(emu, lambda t: "Awaiting review" in t or "review" in t.lower())

    dispatch = emu.text_of(emu.message(BOARD, ts))
    assert LITERAL in dispatch and LITERAL in emu.text_of(emu.home(OTHER))
    assert LITERAL in emu.text_of(await in_thread(emu, task.id, "ready for review"))
    assert LITERAL in emu.text_of(emu.message(BOARD, question["ts"]))     # the answer, quoted
    for where, raw in _everything_posted(emu):
        for ping in ("<!channel>", "<!here>", "<@U_OTHER>", "<!everyone>"):
            assert ping not in raw, f"{where} pings with {ping}: {raw[:300]}"
    # The only mention in the thread is the owner, asked to answer.
    mentioned = {r for _, raw in _everything_posted(emu) for r in ("<@U_OWNER>", "<@U_APPROVER>") if r in raw}
    assert mentioned <= {"<@U_OWNER>"}


async def test_message_shortcut_opens_the_modal_prefilled_with_the_message(emu, taskpin):
    await taskpin.start()
    said = fast(await emu.user_message(OTHER, BOARD, "The export button crashes on empty reports\nsteps: open, export <all> & wait"))
    fast(await emu.message_shortcut(OWNER, BOARD, said.message["ts"], CallbackId.CREATE_TASK_SHORTCUT.value))
    [modal] = emu.views(OWNER)
    prompt = next(b for b in modal["blocks"] if b.get("block_id") == "prompt")
    assert prompt["element"]["initial_value"] == "The export button crashes on empty reports\nsteps: open, export <all> & wait"

    ack = fast(await emu.submit_view(OWNER, modal["id"]))      # submitted as prefilled
    assert not ack.errors
    [task] = await taskpin.core.list_tasks()
    assert task.owner == OWNER and task.title == "The export button crashes on empty reports"
    assert task.prompt.endswith("steps: open, export <all> & wait")


# ---- the Home tab --------------------------------------------------------------------------

def _home_cards(view: dict) -> list[int]:
    return [int(b["block_id"].split(":")[1]) for b in view["blocks"] if b.get("block_id", "").startswith("card:")]


async def test_home_tab_lists_the_viewers_tasks_first_and_pages_through_every_task_once(emu, taskpin):
    await taskpin.start()
    core = taskpin.core
    await slash_task(emu, core, "Mine via slash")
    for n in range(17):
        await core.create_task(prompt=f"Bob's task {n}", owner=OTHER)
    for n in range(12):
        await core.create_task(prompt=f"Alice's task {n}", owner=OWNER)
    mine = {t.id for t in await core.list_tasks(owner=OWNER)}
    everyone = {t.id for t in await core.list_tasks()}
    assert len(mine) == 13 and len(everyone) == 30

    fast(await emu.open_home(OWNER))
    first = await emu.wait_for(lambda: emu.home(OWNER))
    page1 = _home_cards(first)
    assert set(page1[:13]) == mine, "the viewer's own tasks come first"
    assert "Your tasks" in emu.text_of(first) and "Page 1 of 2" in emu.text_of(first)

    fast(await emu.click_home_button(OWNER, make_action_id(ActionId.HOME_PAGE, "next")))
    second = await emu.wait_for(lambda: (h := emu.home(OWNER)) and "Page 2 of 2" in emu.text_of(h) and h)
    page2 = _home_cards(second)
    assert sorted(page1 + page2) == sorted(everyone), "every task exactly once across the pages"
    assert not set(page2) & mine
    with_next = [el for b in second["blocks"] if b.get("type") == "actions" for el in b["elements"]
                 if el["action_id"] == make_action_id(ActionId.HOME_PAGE, "next")]
    assert with_next == [], "no Next on the last page"

    fast(await emu.click_home_button(OWNER, make_action_id(ActionId.HOME_PAGE, "prev")))
    back = await emu.wait_for(lambda: (h := emu.home(OWNER)) and "Page 1 of 2" in emu.text_of(h) and h)
    assert _home_cards(back) == page1

    fast(await emu.open_home(OTHER))                  # another viewer: their own first
    theirs = await emu.wait_for(lambda: emu.home(OTHER))
    assert set(_home_cards(theirs)[:17]) == everyone - mine


# ---- card buttons --------------------------------------------------------------------------

async def test_cancel_on_a_running_card_stops_the_agent_and_fails_the_task(emu, taskpin, tmp_path):
    pid_file = tmp_path / "agent.pid"
    await taskpin.start({"bot": scripted([{"write_pid": str(pid_file)}, {"emit": {"type": "output", "text": "working"}},
                                          {"hang": True}])})
    core = taskpin.core
    task = await slash_task(emu, core, "Long job")
    await click_card(emu, OWNER, ActionId.DISPATCH, task.id)
    await wait_until(lambda: pid_file.exists() and pid_file.read_text().strip(), what="the agent's pid")
    pid = int(pid_file.read_text())
    assert pid_alive(pid)

    await click_card(emu, OTHER, ActionId.CANCEL, task.id)        # not the owner: refused
    await ephemeral(emu, OTHER, "only the task's owner or an approver can cancel".capitalize())
    assert (await core.get_task(task.id)).state is S.IN_PROGRESS and pid_alive(pid)

    [cancel] = [el for el in buttons(board_message(emu)) if el["action_id"] == make_action_id(ActionId.CANCEL, task.id)]
    assert cancel["confirm"]["confirm"]["text"] == "Stop the agent", "Slack asks before the click is sent"
    await click_card(emu, OWNER, ActionId.CANCEL, task.id)
    failed = await wait_state(core, task.id, S.FAILED)
    assert failed.failure_reason == "cancelled"
    result = await in_thread(emu, task.id, "failed: cancelled")
    assert "Retry" in emu.text_of(result)
    await wait_until(lambda: not pid_alive(pid), timeout=5, what="the agent process to be gone")
    assert not core.is_running(task.id)
    await wait_board(emu, lambda t: "cancelled" in t, what="the cancelled card")


async def test_request_changes_sends_the_feedback_to_the_agents_next_session(emu, taskpin):
    await taskpin.start({"bot": scripted([{"echo_prompt": True}, {"write_file": {"path": "a.txt", "content": "a"}},
                                          {"finish": "done"}])})
    core = taskpin.core
    task = await slash_task(emu, core, "Write a.txt")
    await click_card(emu, OWNER, ActionId.DISPATCH, task.id)
    await wait_state(core, task.id, S.AWAITING_REVIEW)

    await click_card(emu, OTHER, ActionId.REQUEST_CHANGES, task.id)    # not the owner: no modal
    await ephemeral(emu, OTHER, "request changes")
    assert emu.views(OTHER) == []

    await click_card(emu, OWNER, ActionId.REQUEST_CHANGES, task.id)
    [modal] = await emu.wait_for(lambda: emu.views(OWNER))
    assert modal["callback_id"] == CallbackId.REQUEST_CHANGES_MODAL and task.short_id in emu.text_of(modal)
    ack = fast(await emu.submit_view(OWNER, modal["id"], {"feedback": "  \n "}))
    assert set(ack.errors) == {"feedback"}
    assert (await core.get_task(task.id)).state is S.AWAITING_REVIEW

    ack = fast(await emu.submit_view(OWNER, modal["id"], {"feedback": "Please also add tests"}))
    assert not ack.errors and emu.views(OWNER) == []
    await ephemeral(emu, OWNER, "Sent your feedback")
    await in_thread(emu, task.id, "changes requested")
    await wait_until(lambda: any("Please also add tests" in line for line in core.tail_log(task.id)),
                     what="the feedback in the agent's prompt")
    again = await wait_state(core, task.id, S.AWAITING_REVIEW)
    assert again.attempts == 2
    prompts = [line for line in core.tail_log(task.id) if line.startswith("prompt:")]
    assert len(prompts) == 2 and "Please also add tests" not in prompts[0]
    assert any("Please also add tests" in line for line in core.tail_log(task.id)[-20:])


async def test_two_users_clicking_dispatch_at_once_start_one_session(emu, taskpin):
    await taskpin.start({"bot": scripted([{"hang": True}])})
    core = taskpin.core
    race = await slash_task(emu, core, "Race me")
    await asyncio.gather(click_card(emu, OWNER, ActionId.DISPATCH, race.id),
                         click_card(emu, APPROVER, ActionId.DISPATCH, race.id))
    await wait_until(lambda: core.is_running(race.id), what="the session")
    await asyncio.sleep(0.3)
    assert (await core.get_task(race.id)).attempts == 1
    dispatched = [h for h in await core.history(race.id) if h.to_state is S.QUEUED]
    assert len(dispatched) == 1
    winner = dispatched[0].actor
    loser = OWNER if winner == APPROVER else APPROVER
    note = await ephemeral(emu, loser, "already")   # dispatched (still queued) or running (started)
    assert "already dispatched" in note["text"] or "already running" in note["text"], note["text"]
    assert race.short_id in note["text"]
    assert emu.ephemerals(user=winner) == [] or all("already" not in (e.get("text") or "")
                                                    for e in emu.ephemerals(user=winner))
    await thread_ts(emu, race.id)
    tops = [m for m in emu.messages(BOARD) if "dispatched by" in emu.text_of(m) and race.short_id in emu.text_of(m)]
    assert len(tops) == 1, "one thread for one session"


# ---- follow-up messages --------------------------------------------------------------------

async def test_a_thread_reply_while_the_agent_works_reaches_it(emu, taskpin, tmp_path):
    log = tmp_path / "stdin.log"
    await taskpin.start({"bot": scripted([{"emit": {"type": "output", "text": "starting"}}, {"wait_message": True},
                                          {"finish": "done"}], env={"SCRIPTED_AGENT_LOG": str(log)})})
    core = taskpin.core
    task = await slash_task(emu, core, "Listen")
    await click_card(emu, OWNER, ActionId.DISPATCH, task.id)
    await wait_until(lambda: core.accepts_follow_up(task.id), what="the running agent")
    ts = await thread_ts(emu, task.id)

    fast(await emu.user_message(OTHER, BOARD, "ignore the owner", thread_ts=ts))   # not the owner
    await ephemeral(emu, OTHER, "not forwarded")
    fast(await emu.user_message(OWNER, BOARD, "also update the changelog", thread_ts=ts))
    await wait_state(core, task.id, S.AWAITING_REVIEW)
    assert [m["text"] for m in lines_of_type(log, "message")] == ["also update the changelog"]
    assert "got message: also update the changelog" in core.tail_log(task.id)
    assert not [e for e in emu.ephemerals(user=OWNER) if "not delivered" in (e.get("text") or "")]


async def test_a_thread_reply_to_an_agent_that_takes_no_follow_ups_is_refused_privately(emu, taskpin, tmp_path):
    log = tmp_path / "stdin.log"
    await taskpin.start({"bot": scripted([{"emit": {"type": "output", "text": "busy"}}, {"hang": True}],
                                         follow_up=False, env={"SCRIPTED_AGENT_LOG": str(log)})})
    core = taskpin.core
    task = await slash_task(emu, core, "Deaf agent")
    await click_card(emu, OWNER, ActionId.DISPATCH, task.id)
    await wait_until(lambda: core.is_running(task.id) and log.exists(), what="the running agent")
    ts = await thread_ts(emu, task.id)
    fast(await emu.user_message(OWNER, BOARD, "are you there?", thread_ts=ts))
    note = await ephemeral(emu, OWNER, "cannot take messages")
    assert "not delivered" in note["text"] and note.get("thread_ts") == ts
    assert lines_of_type(log, "message") == []
    assert (await core.get_task(task.id)).state is S.IN_PROGRESS


async def test_the_bot_ignores_its_own_messages_and_message_edits(emu, taskpin, tmp_path):
    from bot.emulator import payloads

    log = tmp_path / "stdin.log"
    await taskpin.start({"bot": scripted([{"emit": {"type": "output", "text": "step one"}},
                                          {"wait_message": True}, {"wait_message": True}, {"finish": "done"}],
                                         env={"SCRIPTED_AGENT_LOG": str(log)})})
    core = taskpin.core
    task = await slash_task(emu, core, "Chatty")
    await click_card(emu, OWNER, ActionId.DISPATCH, task.id)
    await in_thread(emu, task.id, "step one")            # the bot's own reply in the thread...
    ts = await thread_ts(emu, task.id)
    await emu.wait_for(lambda: any(d.kind == "message" and d.payload["event"].get("user") == emu.bot_user_id
                                   and d.payload["event"].get("thread_ts") == ts and d.ack
                                   for d in emu.deliveries))     # ...was delivered to the app as an event

    said = fast(await emu.user_message(OWNER, BOARD, "one", thread_ts=ts))
    await wait_until(lambda: len(lines_of_type(log, "message")) == 1, what="the first message")
    edited = {**said.message, "text": "one, edited", "edited": {"user": OWNER, "ts": said.message["ts"]}}
    ch = emu.ws.require_channel(BOARD)
    fast(await emu.send_event(payloads.message_changed_event(edited, said.message, ch)))
    await asyncio.sleep(0.5)
    fast(await emu.user_message(OWNER, BOARD, "two", thread_ts=ts))
    await wait_state(core, task.id, S.AWAITING_REVIEW)
    assert [m["text"] for m in lines_of_type(log, "message")] == ["one", "two"]
    assert emu.ephemerals(user=emu.bot_user_id) == []
    assert [e["text"].split()[0] for e in emu.ephemerals(user=OWNER)] == ["Created"]   # only /task's reply
