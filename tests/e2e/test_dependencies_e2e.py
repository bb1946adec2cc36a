"""Tasks that wait for others, end to end through the Slack emulator with real agent processes:
`/task … after #N` and the form's Waits for field, the waiting card in the backlog column, the
automatic dispatch on the dependency's branch, and a rejected dependency's note with Dispatch
anyway / Cancel in the thread."""
from __future__ import annotations

from bot.emulator.blockkit import iter_elements
from bot.ids import ActionId, CallbackId
from orchestrator import TaskState
from tests.core.helpers import scripted, wait_state

from .conftest import BOARD, OWNER
from .scenario import board_text, click_card, wait_board, wait_thread
from .ui import ephemeral, every_ack_is_fast, fast, slash_task  # noqa: F401

S = TaskState
AGENTS = {"writer": scripted([{"write_file": {"path": "api.py", "content": "def api(): ...\n"}},
                              {"finish": "wrote api.py"}]),
          "reader": scripted([{"finish": "used the API"}])}


async def test_a_task_after_another_waits_then_starts_on_its_branch_by_itself(emu, taskpin):
    await taskpin.start(AGENTS)
    core = taskpin.core
    fast(await emu.slash_command(OWNER, "/task", "agent=writer Fix the API after #99"))
    await ephemeral(emu, OWNER, "There is no task #99 to wait for")
    assert await core.list_tasks() == []

    api = await slash_task(emu, core, "agent=writer Write the API")
    client = await slash_task(emu, core, f"agent=reader Use the API after #{api.id}")
    assert client.depends_on == (api.id,) and client.prompt == "Use the API"
    await ephemeral(emu, OWNER, f"It waits for #{api.id}: press *Dispatch* and it starts when they complete")

    await click_card(emu, OWNER, ActionId.DISPATCH, client.id)
    await wait_state(core, client.id, S.WAITING)
    await wait_board(emu, lambda t: f"waits for #{api.id}" in t and "Backlog* (2)" in t, what="waiting in Backlog")
    root = await emu.wait_for(lambda: next((m for m in emu.messages(BOARD) if "dispatched by" in emu.text_of(m)
                                            and f"#{client.id}" in emu.text_of(m)), None), timeout=6)
    assert f"It waits for #{api.id} and starts by itself" in emu.text_of(root), "its thread starts at dispatch"

    await click_card(emu, OWNER, ActionId.DISPATCH, api.id)
    await wait_state(core, api.id, S.AWAITING_REVIEW)
    assert (await core.get_task(client.id)).state is S.WAITING
    await click_card(emu, OWNER, ActionId.APPROVE, api.id)
    done = await wait_state(core, client.id, S.AWAITING_REVIEW)
    assert done.base_branch == api.branch, "on_approve = none keeps the work on the API task's branch"
    assert (core.workspaces.path_for(client.id) / "api.py").exists()
    await wait_thread(emu, client.id, "ready for review")
    await wait_board(emu, lambda t: "waits for" not in t, what="no waiting card left")


async def test_a_rejected_dependency_leaves_it_waiting_with_dispatch_anyway_and_cancel(emu, taskpin):
    await taskpin.start(AGENTS)
    core = taskpin.core
    api = await slash_task(emu, core, "agent=writer Write the API")

    # The form: a bad id is shown in the field; then the task is created waiting for the API.
    fast(await emu.slash_command(OWNER, "/task", ""))
    [modal] = emu.views(OWNER)
    assert modal["callback_id"] == CallbackId.CREATE_TASK_MODAL and "Waits for" in emu.text_of(modal)
    ack = fast(await emu.submit_view(OWNER, modal["id"], {"prompt": "Use the API", "agent": "reader",
                                                          "depends_on": "#x1"}))
    assert set(ack.errors) == {"depends_on"} and "not a task id" in ack.errors["depends_on"]
    ack = fast(await emu.submit_view(OWNER, modal["id"], {"prompt": "Use the API", "agent": "reader",
                                                          "depends_on": "#77"}))
    assert "there is no task #77" in ack.errors["depends_on"]
    ack = fast(await emu.submit_view(OWNER, modal["id"], {"prompt": "Use the API", "agent": "reader",
                                                          "depends_on": f"#{api.id}"}))
    assert not ack.errors
    [client] = [t for t in await core.list_tasks() if t.id != api.id]
    assert client.depends_on == (api.id,)

    await click_card(emu, OWNER, ActionId.DISPATCH, client.id)
    await click_card(emu, OWNER, ActionId.DISPATCH, api.id)
    await wait_state(core, api.id, S.AWAITING_REVIEW)
    await core.reject(api.id, actor=OWNER, reason="wrong approach")
    note = await wait_thread(emu, client.id, "waits for, failed")
    assert "rejected by" in emu.text_of(note) and "wrong approach" in emu.text_of(note)
    assert (await core.get_task(client.id)).state is S.WAITING
    labels = {el["text"]["text"]: el for _, el in iter_elements(note["blocks"]) if el.get("type") == "button"}
    assert set(labels) == {"Dispatch anyway", "Cancel"}
    anyway = labels["Dispatch anyway"]
    fast(await emu.click_button(OWNER, BOARD, note["ts"], anyway["action_id"], anyway["value"]))
    done = await wait_state(core, client.id, S.AWAITING_REVIEW)
    assert done.base_branch == "main"
    history = [(h.from_state, h.to_state, h.reason) for h in await core.history(client.id)]
    assert (S.WAITING, S.QUEUED, "dispatched anyway") in history
    assert board_text(emu)
