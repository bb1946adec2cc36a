"""Slash command → card → Dispatch → question in the thread → answer → review → Approve."""
from __future__ import annotations

from bot.ids import ActionId
from orchestrator import TaskState
from tests.core.helpers import wait_state

from .conftest import BOARD, OTHER, OWNER
from .scenario import asking_agent, click_card, create_by_slash, run_question_to_review, wait_board, wait_thread

S = TaskState


async def test_the_whole_journey_in_socket_mode(emu, taskpin):
    await taskpin.start(asking_agent())
    core = taskpin.core
    task_id = await create_by_slash(emu, core)
    await wait_board(emu, lambda t: "Add a greeting file" in t, what="card on the board")
    await run_question_to_review(emu, core, task_id)
    await wait_board(emu, lambda t: "greeting.txt" in t or "+1" in t, what="diff summary on the card")

    await click_card(emu, OTHER, ActionId.APPROVE, task_id)         # not the owner: refused
    await emu.wait_for(lambda: any("owner" in emu.text_of(e) for e in emu.ephemerals(user=OTHER)), timeout=5)
    assert (await core.get_task(task_id)).state is S.AWAITING_REVIEW
    await click_card(emu, OWNER, ActionId.APPROVE, task_id)
    await wait_state(core, task_id, S.COMPLETED)
    await wait_thread(emu, task_id, "completed")
    await wait_board(emu, lambda t: "Completed (1)" in t or "1 completed" in t, what="completed on the board")
    assert len(emu.pinned(BOARD)) == 1


async def test_the_whole_journey_in_http_mode(emu, taskpin):
    await taskpin.start(asking_agent(), socket=False)
    core = taskpin.core
    task_id = await create_by_slash(emu, core)
    await run_question_to_review(emu, core, task_id)
    await click_card(emu, OWNER, ActionId.APPROVE, task_id)
    await wait_state(core, task_id, S.COMPLETED)
