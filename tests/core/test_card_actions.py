"""Every button a card shows does what its state allows: for each state, each button of that
state's card (bot.blocks.card.CARD_ACTIONS) is pressed through the core call its listener
makes, on a real task in that state, and every transition it causes is in the table."""
from __future__ import annotations

import pytest

from bot.blocks.card import CARD_ACTIONS
from bot.ids import ActionId
from orchestrator import TRANSITIONS, Orchestrator, TaskState, TaskView

from .helpers import make_settings, scripted, started, wait_state, wait_until

S = TaskState
OWNER = "U1"

# The core call each card button's listener makes (bot/listeners/actions.py, views.py).
PRESS = {
    ActionId.DISPATCH: lambda core, task_id: core.dispatch(task_id, actor=OWNER),
    ActionId.DISPATCH_ANYWAY: lambda core, task_id: core.dispatch(task_id, actor=OWNER, anyway=True),
    ActionId.CANCEL: lambda core, task_id: core.cancel(task_id, actor=OWNER),
    ActionId.RETRY: lambda core, task_id: core.retry(task_id, actor=OWNER),
    ActionId.APPROVE: lambda core, task_id: core.approve(task_id, actor=OWNER),
    ActionId.REJECT: lambda core, task_id: core.reject(task_id, actor=OWNER),
    ActionId.REQUEST_CHANGES: lambda core, task_id: core.request_changes(task_id, "more tests", actor=OWNER),
}
AGENTS = {"hang": scripted([{"hang": True}]),
          "ask": scripted([{"ask": {"id": "q", "kind": "input", "prompt": "name?"}}, {"hang": True}]),
          "done": scripted([{"finish": "ok"}])}


async def _new(core: Orchestrator, agent: str) -> TaskView:
    return await core.create_task(prompt=f"run {agent}", owner=OWNER, agent=agent)


async def _running(core: Orchestrator, agent: str, state: TaskState) -> TaskView:
    task = await _new(core, agent)
    await core.dispatch(task.id, actor=OWNER)
    await wait_until(lambda: core.is_running(task.id), what="the run")
    return await wait_state(core, task.id, state)


async def _queued(core: Orchestrator) -> TaskView:
    await _running(core, "hang", S.IN_PROGRESS)   # takes the only slot
    task = await _new(core, "done")
    await core.dispatch(task.id, actor=OWNER)
    return await wait_state(core, task.id, S.QUEUED)


async def _waiting(core: Orchestrator) -> TaskView:
    first = await _new(core, "done")
    task = await core.create_task(prompt="after the first", owner=OWNER, agent="done", depends_on=[first.id])
    return await core.dispatch(task.id, actor=OWNER)


async def _failed(core: Orchestrator) -> TaskView:
    task = await _new(core, "done")
    return await core.cancel(task.id, actor=OWNER)


BUILD = {
    S.BACKLOG: lambda core: _new(core, "done"),
    S.QUEUED: _queued,
    S.WAITING: _waiting,
    S.IN_PROGRESS: lambda core: _running(core, "hang", S.IN_PROGRESS),
    S.BLOCKED: lambda core: _running(core, "ask", S.BLOCKED),
    S.AWAITING_REVIEW: lambda core: _running(core, "done", S.AWAITING_REVIEW),
    S.FAILED: _failed,
}
SHOWN = [(state, action) for state, actions in CARD_ACTIONS.items() for action in actions]


def test_every_button_has_a_core_call_and_every_state_with_buttons_a_builder():
    assert {action for _, action in SHOWN} <= set(PRESS)
    assert {state for state, _ in SHOWN} <= set(BUILD)


@pytest.mark.parametrize(("state", "action"), SHOWN, ids=[f"{s.value}-{a.value}" for s, a in SHOWN])
async def test_a_card_button_moves_its_task_along_allowed_edges(tmp_path, git_repo, state, action):
    core = await started(make_settings(tmp_path, git_repo, AGENTS, max_concurrent_sessions=1))
    try:
        task = await BUILD[state](core)
        assert task.state is state
        before = len(await core.history(task.id))
        await PRESS[action](core, task.id)
        moves = [(h.from_state, h.to_state) for h in (await core.history(task.id))[before:]]
        assert moves, f"{action.value} on a {state.value} task changed nothing"
        assert moves[0][0] is state
        assert [m for m in moves if m not in TRANSITIONS] == []
    finally:
        await core.close()
