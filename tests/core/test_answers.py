"""An answer reaches the agent before the question shows as answered; an answer the agent
cannot be given leaves the question open and says so in the task's thread."""
from __future__ import annotations

import pytest

from orchestrator import (
    ActionRefused,
    Answer,
    AnswerNotDelivered,
    InterventionResolved,
    InterventionStatus,
    NotAllowed,
    TaskState,
)

from .helpers import Recorder, make_settings, scripted, started, wait_state, wait_until

S = TaskState
QUESTION = {"type": "intervention", "id": "q", "kind": "input", "prompt": "name?"}


async def test_an_answer_the_agent_cannot_take_keeps_the_question_open_and_tells_the_thread(tmp_path, git_repo):
    steps = [{"close_stdin": True}, {"emit": QUESTION}, {"hang": True}]   # closed before it asks
    core = await started(make_settings(tmp_path, git_repo, {"bot": scripted(steps)}))
    rec = Recorder(core)
    try:
        task = await core.create_task(prompt="ask", owner="U1")
        await core.dispatch(task.id, actor="U1")
        await wait_state(core, task.id, S.BLOCKED)
        [iv] = await core.pending_interventions(task.id)
        with pytest.raises(ActionRefused, match="could not reach the agent.*still open"):
            await core.answer(iv.id, Answer(text="Ada"), actor="U1")
        stored = await core.get_intervention(iv.id)
        assert stored.status is InterventionStatus.PENDING and stored.answered_by is None
        assert (await core.get_task(task.id)).state is S.BLOCKED
        await wait_until(lambda: rec.of(AnswerNotDelivered), what="the thread is told")
        [told] = rec.of(AnswerNotDelivered)
        assert (told.intervention.id, told.actor) == (iv.id, "U1") and "cannot send the answer" in told.error
        assert not rec.of(InterventionResolved)
        assert [q.id for q in await core.pending_interventions(task.id)] == [iv.id]
        # Still open: it can be answered again (here it fails again), or the task cancelled.
        with pytest.raises(ActionRefused, match="could not reach the agent"):
            await core.answer(iv.id, Answer(text="Ada"), actor="U1")
        await core.cancel(task.id, actor="U1")
        assert (await core.get_intervention(iv.id)).status is InterventionStatus.CANCELLED
    finally:
        await core.close()


async def test_an_answer_is_delivered_then_stored_then_shown(tmp_path, git_repo):
    steps = [{"ask": {"id": "q", "kind": "input", "prompt": "name?"}}, {"finish": "ok"}]
    core = await started(make_settings(tmp_path, git_repo, {"bot": scripted(steps)}))
    rec = Recorder(core)
    try:
        task = await core.create_task(prompt="ask", owner="U1")
        await core.dispatch(task.id, actor="U1")
        await wait_state(core, task.id, S.BLOCKED)
        [iv] = await core.pending_interventions(task.id)
        assert await core.get_intervention(iv.id) == iv   # read from the run, as stored
        with pytest.raises(NotAllowed):
            await core.answer(iv.id, Answer(text="Eve"), actor="U_STRANGER")
        answered = await core.answer(iv.id, Answer(text="Ada"), actor="U1")
        assert (answered.status, answered.answered_by, answered.answer_text) == (
            InterventionStatus.ANSWERED, "U1", "Ada")
        assert (await core.get_intervention(iv.id)).status is InterventionStatus.ANSWERED
        with pytest.raises(ActionRefused, match="already answered by <U1>"):
            await core.answer(iv.id, Answer(text="again"), actor="U1")
        await wait_state(core, task.id, S.AWAITING_REVIEW)
        assert any(line.startswith("got answer:") and "Ada" in line for line in core.tail_log(task.id))
        await wait_until(lambda: rec.of(InterventionResolved), what="the question shown answered")
        assert not rec.of(AnswerNotDelivered)
    finally:
        await core.close()
