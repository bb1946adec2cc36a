"""Owners learn at once that agents wait for them: a DM each (one per owner, however many
questions), and the Home tab's "Waiting for you" with buttons that answer the agent."""
from __future__ import annotations

from bot.ids import ActionId, make_action_id
from orchestrator import TaskState
from tests.core.helpers import scripted, wait_state

from .conftest import OWNER

S = TaskState
QUESTION = {"ask": {"id": "q1", "kind": "question", "prompt": "Ship it *now* <!channel>?",
                    "options": [{"id": "yes", "label": "Yes"}, {"id": "no", "label": "No"}]}}
ASKER = {"bot": scripted([QUESTION, {"finish": "shipped"}])}


def dms(emu, user: str) -> list[dict]:
    return emu.messages(emu.ws.im_with(user).id)


def dm_429s(emu, users) -> int:
    channels = {emu.ws.im_with(u).id for u in users}
    return sum(1 for c in emu.calls if c.http_status == 429 and c.params.get("channel") in channels)


async def ask_all(taskpin, owners: list[str]) -> list[int]:
    core = taskpin.core
    ids = [(await core.create_task(prompt=f"task of {owner} #{i}", owner=owner)).id for i, owner in enumerate(owners)]
    for task_id, owner in zip(ids, owners):
        await core.dispatch(task_id, actor=owner)
    for task_id in ids:
        await wait_state(core, task_id, S.BLOCKED)
    return ids


async def test_each_owner_gets_one_dm_naming_their_question(emu, taskpin):
    owners = ["U_ANA", "U_BO", "U_CY"]
    for owner in owners:
        emu.add_user(owner, owner.lower())
    await taskpin.start(ASKER)
    ids = await ask_all(taskpin, owners)
    for task_id, owner in zip(ids, owners):
        [dm] = await emu.wait_for(lambda o=owner: dms(emu, o), timeout=10)
        text = emu.text_of(dm)
        assert f"#{task_id}" in text and f"<@{owner}>" in text
        assert "<!channel>" not in text and "*now*" not in text    # the agent's text is escaped
    await emu.wait_for(lambda: all(len(dms(emu, o)) == 1 for o in owners), timeout=5)
    assert dm_429s(emu, owners) == 0


async def test_one_owner_with_many_questions_gets_one_dm_saying_how_many(emu, taskpin):
    await taskpin.start(ASKER, max_concurrent_sessions=4)
    ids = await ask_all(taskpin, [OWNER] * 4)
    channel = emu.ws.im_with(OWNER).id
    dm = await emu.wait_for(lambda: [m for m in dms(emu, OWNER) if "4 agent questions" in emu.text_of(m)], timeout=10)
    assert len(dms(emu, OWNER)) == 1                      # one message, edited as questions came
    assert all(f"#{i}" in emu.text_of(dm[0]) for i in ids)

    # The Home tab lists the four with answer buttons; one click answers the agent.
    await emu.open_home(OWNER)
    home = await emu.wait_for(lambda: (h := emu.home(OWNER)) and "Waiting for you" in emu.text_of(h) and h,
                              timeout=10)
    assert "(4)" in emu.text_of(home)
    [iv] = await taskpin.core.pending_interventions(ids[0])
    await emu.click_home_button(OWNER, make_action_id(ActionId.ANSWER_OPTION, iv.id, 0))
    await wait_state(taskpin.core, ids[0], S.AWAITING_REVIEW)

    ts = dm[0]["ts"]
    await emu.wait_for(lambda: "3 agent questions" in emu.text_of(emu.message(channel, ts)), timeout=10)
    await emu.wait_for(lambda: "(3)" in emu.text_of(emu.home(OWNER)), timeout=10)
    for task_id in ids[1:]:
        [iv] = await taskpin.core.pending_interventions(task_id)
        await emu.click_home_button(OWNER, make_action_id(ActionId.ANSWER_OPTION, iv.id, 0))
        await wait_state(taskpin.core, task_id, S.AWAITING_REVIEW)
    await emu.wait_for(lambda: "Nothing waits" in emu.text_of(emu.message(channel, ts)), timeout=10)
    await emu.wait_for(lambda: "Waiting for you" not in emu.text_of(emu.home(OWNER)), timeout=10)
    assert len(dms(emu, OWNER)) == 1 and dm_429s(emu, [OWNER]) == 0


async def test_a_dm_that_slack_refused_for_a_while_still_arrives(emu, taskpin):
    await taskpin.start(ASKER)
    emu.force_rate_limit("chat.postMessage", 2.0)           # Slack says 429 to every post for 2 s
    [task_id] = await ask_all(taskpin, [OWNER])
    [dm] = await emu.wait_for(lambda: dms(emu, OWNER), timeout=15)
    assert f"#{task_id}" in emu.text_of(dm)
    await emu.wait_for(lambda: taskpin.runtime.poster.pending == 0, timeout=15)
    assert dm_429s(emu, [OWNER]) > 0       # it was refused, kept, and sent later
