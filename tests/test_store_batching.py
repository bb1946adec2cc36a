"""Store calls made at once share a transaction (orchestrator/store/batch.py), on SQLite and
PostgreSQL: each caller still gets its own result, its own refusal, its own lease check."""
from __future__ import annotations

import asyncio

import pytest
from sqlalchemy import event

from orchestrator.models import InterventionKind, InterventionStatus
from orchestrator.states import IllegalTransition, TaskState
from orchestrator.store import Store, TaskNotFound
from orchestrator.store.fence import LeaseLost, current_fence

S = TaskState


async def _task(store: Store, owner="U1"):
    return await store.create_task(title="t", prompt="do it", owner=owner, repo="app", agent="bot",
                                   base_branch="main", branch_for=lambda i: f"taskpin/{i}")


def _commits(store: Store) -> list[int]:
    counted = [0]

    @event.listens_for(store.engine.sync_engine, "commit")
    def _on_commit(_conn) -> None:
        counted[0] += 1
    return counted


def _question(task_id: int, n: int = 0) -> dict:
    return dict(task_id=task_id, actor="agent", reason="needs a human: input", attempt=1, request_id=f"r{n}",
                kind=InterventionKind.QUESTION, prompt=f"Question {n}?", options=(), tool=None, detail=None,
                multi_select=False)


@pytest.fixture
async def store(db_url):
    store = await Store.open(db_url)
    yield store
    await store.close()


async def test_state_changes_made_at_once_share_transactions_and_each_is_audited(store):
    tasks = [await _task(store) for _ in range(30)]
    commits = _commits(store)
    moved = await asyncio.gather(*(store.transition(t.id, S.BACKLOG, S.QUEUED, actor=f"U{t.id}", reason="go")
                                   for t in tasks))
    assert [m.id for m in moved] == [t.id for t in tasks]
    assert all(m.state is S.QUEUED and m.version == t.version + 1 for m, t in zip(moved, tasks))
    assert commits[0] < len(tasks)          # group commit: fewer transactions than changes
    for t in tasks:
        last = await store.last_transition(t.id)
        assert (last.from_state, last.to_state, last.actor) == (S.BACKLOG, S.QUEUED, f"U{t.id}")


async def test_of_two_changes_from_the_same_state_at_once_one_wins_and_the_other_learns_who(store):
    task = await _task(store)
    results = await asyncio.gather(
        store.transition(task.id, S.BACKLOG, S.FAILED, actor="U_ANA", reason="cancelled by U_ANA"),
        store.transition(task.id, S.BACKLOG, S.QUEUED, actor="U_BOB", reason="dispatched"),
        return_exceptions=True)
    won, lost = results
    assert won.state is S.FAILED
    assert isinstance(lost, IllegalTransition) and lost.by == "U_ANA" and lost.from_state is S.FAILED
    assert [r.to_state for r in await store.transitions(task.id)] == [S.BACKLOG, S.FAILED]


async def test_a_task_moved_twice_in_one_batch_is_returned_as_each_move_left_it(store):
    task = await _task(store)
    first, second = await asyncio.gather(
        store.transition(task.id, S.BACKLOG, S.QUEUED, actor="U1", reason="dispatched"),
        store.transition(task.id, S.QUEUED, S.IN_PROGRESS, actor="taskpin", reason="slot"))
    assert (first.state, first.version) == (S.QUEUED, task.version + 1)
    assert (second.state, second.version) == (S.IN_PROGRESS, task.version + 2)


async def test_reads_made_at_once_each_get_their_task_or_their_own_not_found(store):
    tasks = [await _task(store) for _ in range(5)]
    results = await asyncio.gather(*(store.get_task(t.id) for t in tasks), store.get_task(10_000),
                                   return_exceptions=True)
    assert [r.id for r in results[:5]] == [t.id for t in tasks]
    assert isinstance(results[5], TaskNotFound)


async def test_one_bad_question_in_a_batch_fails_only_its_own_caller(store):
    tasks = [await _task(store) for _ in range(4)]
    for t in tasks:
        await store.transition(t.id, S.BACKLOG, S.QUEUED, actor="U1", reason="go")
        await store.transition(t.id, S.QUEUED, S.IN_PROGRESS, actor="taskpin", reason="slot")
    asks = [store.ask(**_question(t.id, i)) for i, t in enumerate(tasks)]
    asks.insert(2, store.ask(**_question(99_999, 9)))      # no such task: the row cannot be written
    results = await asyncio.gather(*asks, return_exceptions=True)
    assert isinstance(results[2], Exception)
    good = [r for i, r in enumerate(results) if i != 2]
    assert all(moved and task.state is S.BLOCKED and iv.task_id == task.id for iv, moved, task in good)
    assert sorted(iv.task_id for iv in await store.interventions()) == [t.id for t in tasks]


async def test_answers_made_at_once_share_transactions_and_a_question_closes_once(store):
    tasks = [await _task(store) for _ in range(20)]
    for t in tasks:
        await store.transition(t.id, S.BACKLOG, S.QUEUED, actor="U1", reason="go")
        await store.transition(t.id, S.QUEUED, S.IN_PROGRESS, actor="taskpin", reason="slot")
    questions = [iv for iv, _moved, _task in await asyncio.gather(
        *(store.ask(**_question(t.id, i)) for i, t in enumerate(tasks)))]
    commits = _commits(store)
    answers = [store.resolve_intervention(iv.id, InterventionStatus.ANSWERED, answered_by=f"U{iv.task_id}",
                                          answer_text=f"yes {iv.id}") for iv in questions]
    answers.append(store.resolve_intervention(questions[0].id, InterventionStatus.CANCELLED))  # too late
    answers.append(store.resolve_intervention(2**70, InterventionStatus.CANCELLED))             # no such id
    closed = await asyncio.gather(*answers)
    assert commits[0] < len(questions)      # group commit: fewer transactions than answers
    assert closed[-2:] == [None, None]
    for iv, done in zip(questions, closed):
        assert (done.id, done.status, done.answered_by, done.answer_text) == (
            iv.id, InterventionStatus.ANSWERED, f"U{iv.task_id}", f"yes {iv.id}")
        assert (await store.get_intervention(iv.id)).status is InterventionStatus.ANSWERED


async def test_a_write_whose_lease_was_taken_over_fails_alone_in_its_batch(store):
    tasks = [await _task(store) for _ in range(3)]

    def taken_over(_connection) -> None:
        raise LeaseLost("task:x", "worker-a", 1)

    async def fenced_move(task_id: int, fence):
        current_fence.set(fence)     # this task's context only, like a runner's
        return await store.transition(task_id, S.BACKLOG, S.QUEUED, actor="U1", reason="go")

    results = await asyncio.gather(fenced_move(tasks[0].id, None), fenced_move(tasks[1].id, taken_over),
                                   fenced_move(tasks[2].id, lambda _c: None), return_exceptions=True)
    assert isinstance(results[1], LeaseLost)
    assert results[0].state is S.QUEUED and results[2].state is S.QUEUED
    assert (await store.get_task(tasks[1].id)).state is S.BACKLOG      # its write never landed
