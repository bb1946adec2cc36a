"""The store on SQLite and PostgreSQL: migrations, CAS transitions, audit log, queue, kv."""
from __future__ import annotations

import asyncio

import pytest

from orchestrator.models import InterventionKind, InterventionStatus, Option
from orchestrator.states import IllegalTransition, TaskState
from orchestrator.store import Store, TaskNotFound
from orchestrator.store.migrate import current_revision

S = TaskState


async def _task(store: Store, title="Fix login", owner="U1"):
    return await store.create_task(title=title, prompt="do it", owner=owner, repo="app", agent="bot",
                                   base_branch="main", branch_for=lambda i: f"taskpin/{i}-fix")


async def test_migrations_create_schema_and_record_head(db_url):
    store = await Store.open(db_url)
    try:
        from alembic.script import ScriptDirectory

        from orchestrator.store.migrate import alembic_config
        head = ScriptDirectory.from_config(alembic_config()).get_current_head()
        assert head not in (None, "0001") and await current_revision(store.engine) == head
        task = await _task(store)
        assert task.state is S.BACKLOG and task.branch == f"taskpin/{task.id}-fix"
    finally:
        await store.close()
    # Opening again (a restart) re-applies nothing and keeps data.
    store = await Store.open(db_url)
    try:
        assert (await store.get_task(task.id)).title == "Fix login"
    finally:
        await store.close()


async def test_transition_is_compare_and_set_and_audited(db_url):
    store = await Store.open(db_url)
    try:
        task = await _task(store)
        moved = await store.transition(task.id, S.BACKLOG, S.QUEUED, actor="U2", reason="dispatch")
        assert moved.state is S.QUEUED and moved.version == task.version + 1
        with pytest.raises(IllegalTransition, match="it is queued, not backlog"):
            await store.transition(task.id, S.BACKLOG, S.QUEUED, actor="U3")
        with pytest.raises(IllegalTransition, match="cannot go from queued to completed"):
            await store.transition(task.id, S.QUEUED, S.COMPLETED, actor="U3")
        audit = await store.transitions(task.id)
        assert [(a.from_state, a.to_state, a.actor) for a in audit] == [
            (None, S.BACKLOG, "U1"), (S.BACKLOG, S.QUEUED, "U2")]
        with pytest.raises(TaskNotFound):
            await store.transition(999, S.BACKLOG, S.QUEUED, actor="U1")
    finally:
        await store.close()


async def test_concurrent_transitions_only_one_wins(db_url):
    store = await Store.open(db_url)
    try:
        task = await _task(store)

        async def dispatch(who):
            try:
                await store.transition(task.id, S.BACKLOG, S.QUEUED, actor=who)
                return True
            except IllegalTransition:
                return False

        results = await asyncio.gather(*(dispatch(f"U{i}") for i in range(10)))
        assert results.count(True) == 1
        assert len([a for a in await store.transitions(task.id) if a.to_state is S.QUEUED]) == 1
    finally:
        await store.close()


async def test_queue_positions_are_fifo(db_url):
    store = await Store.open(db_url)
    try:
        from orchestrator.store.tables import utcnow
        ids = []
        for i in range(3):
            t = await _task(store, title=f"t{i}")
            await store.transition(t.id, S.BACKLOG, S.QUEUED, actor="U1", queued_at=utcnow())
            ids.append(t.id)
        assert [t.queue_position for t in await store.list_tasks()] == [1, 2, 3]
        assert await store.queued_task_ids() == ids
        await store.transition(ids[0], S.QUEUED, S.IN_PROGRESS, actor="taskpin")   # a slot takes the first
        with pytest.raises(IllegalTransition):                                   # and only once
            await store.transition(ids[0], S.QUEUED, S.IN_PROGRESS, actor="taskpin")
        assert [(await store.get_task(i)).queue_position for i in ids] == [None, 1, 2]
    finally:
        await store.close()


async def test_interventions_resolve_once_and_usage_accumulates(db_url):
    store = await Store.open(db_url)
    try:
        task = await _task(store)
        iv = await store.add_intervention(task_id=task.id, attempt=1, request_id="q1",
                                          kind=InterventionKind.PERMISSION, prompt="run rm?",
                                          options=[Option("allow", "Approve", "allow")], tool="Bash",
                                          detail="rm -rf build", multi_select=False)
        assert (await store.get_task(task.id)).pending_interventions == 1
        first = await store.resolve_intervention(iv.id, InterventionStatus.ANSWERED, answered_by="U1",
                                                 answer_options=["allow"])
        second = await store.resolve_intervention(iv.id, InterventionStatus.ANSWERED, answered_by="U2")
        assert first.answered_by == "U1" and first.answer_options == ("allow",) and second is None
        attempt_id, number, token = await store.start_attempt(task.id, "command")
        await store.add_usage(task.id, attempt_id, 100, 20, 0.5)
        assert await store.add_usage(task.id, attempt_id, 1, 2, 0.25) == (101, 22, 0.75)
        view = await store.get_task(task.id)
        assert (view.input_tokens, view.output_tokens, view.cost_usd) == (101, 22, 0.75)
        assert view.attempts == 1 and number == 1 and len(token) == 32
    finally:
        await store.close()


async def test_a_question_and_the_move_to_blocked_are_one_write_and_audited(db_url):
    store = await Store.open(db_url)
    try:
        task = await _task(store)
        for to in (S.QUEUED, S.IN_PROGRESS):
            task = await store.transition(task.id, task.state, to, actor="U1", reason="go")
        question = dict(attempt=1, kind=InterventionKind.INPUT, options=[], tool=None, detail=None, multi_select=False)
        first, moved, _ = await store.ask(task_id=task.id, actor="agent", reason="needs a human: input",
                                       request_id="q1", prompt="which port?", **question)
        after = await store.get_task(task.id)
        assert moved and after.state is S.BLOCKED and after.version == task.version + 1
        assert after.pending_interventions == 1 and first.prompt == "which port?"
        last = await store.last_transition(task.id)
        assert (last.from_state, last.to_state, last.actor) == (S.IN_PROGRESS, S.BLOCKED, "agent")
        second, moved_again, _ = await store.ask(task_id=task.id, actor="agent", reason="needs a human: input",
                                              request_id="q2", prompt="and the host?", **question)
        assert not moved_again and (await store.get_task(task.id)).version == after.version   # still blocked
        assert [iv.id for iv in await store.interventions(task.id)] == [first.id, second.id]
    finally:
        await store.close()


async def test_kv_round_trip(db_url):
    store = await Store.open(db_url)
    try:
        assert await store.kv_get("board") is None
        await store.kv_set("board", {"channel": "C1", "ts": "1.2"})
        await store.kv_set("board", {"channel": "C1", "ts": "3.4"})
        await store.kv_set("thread:1", "5.6")
        assert await store.kv_get("board") == {"channel": "C1", "ts": "3.4"}
        assert await store.kv_items("thread:") == {"thread:1": "5.6"}
        await store.kv_delete("board")
        assert await store.kv_get("board", "gone") == "gone"
    finally:
        await store.close()
