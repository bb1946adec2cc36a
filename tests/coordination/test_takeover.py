"""Settling one task of a lost worker (orchestrator/coordination/takeover.py), on a real store:
resume where the harness can and the worktree is reachable, else another attempt while the run
has some left, else failed "worker X lost"."""
from __future__ import annotations

from orchestrator.coordination.takeover import settle_lost_task
from orchestrator.states import TaskState
from orchestrator.store import Store
from orchestrator.store.tables import utcnow
from orchestrator.world import World
from tests.core.helpers import make_settings, scripted

S = TaskState


async def running_task(world: World, agent: str, *, session: str | None = None, worktree: str | None = None) -> int:
    store = world.store
    task = await store.create_task(title="t", prompt="do it", owner="U1", repo="app", agent=agent,
                                   base_branch="main", branch_for=lambda i: f"taskpin/{i}")
    await store.transition(task.id, S.BACKLOG, S.QUEUED, actor="U1", reason="dispatched", queued_at=utcnow())
    await store.transition(task.id, S.QUEUED, S.IN_PROGRESS, actor="taskpin", reason="slot", worker="w1")
    attempt_id, _, _ = await store.start_attempt(task.id, "command")
    if session:
        await store.update_attempt(attempt_id, harness_session_id=session)
    if worktree:
        await store.update_task(task.id, worktree=worktree)
    return task.id


async def test_a_lost_task_resumes_gets_another_attempt_or_fails_with_the_worker_s_name(tmp_path, git_repo, pg_url):
    agents = {"resumable": scripted([], resume=True), "oneshot": scripted([])}
    settings = make_settings(tmp_path, git_repo, agents, db_url=pg_url, max_attempts=2)
    store = await Store.open(pg_url)
    world = World(settings, store)
    try:
        resumable = await running_task(world, "resumable", session="s-1", worktree=str(tmp_path))
        far_away = await running_task(world, "resumable", session="s-2", worktree="/elsewhere/on/w1")
        oneshot = await running_task(world, "oneshot")
        assert await settle_lost_task(world, resumable, "w1") == "queued to resume"
        assert await settle_lost_task(world, far_away, "w1") == "failed"
        assert await settle_lost_task(world, oneshot, "w1") == "queued for another attempt"
        assert (await store.get_task(resumable)).state is S.QUEUED
        assert (await store.get_task(far_away)).failure_reason.startswith("worker w1 lost (its worktree")
        assert (await store.last_transition(oneshot)).reason == "worker w1 lost; attempt 2 of 2 starts on the next free worker"
        # The second attempt is lost too: the run has none left.
        await store.transition(oneshot, S.QUEUED, S.IN_PROGRESS, actor="taskpin", reason="slot", worker="w2")
        await store.start_attempt(oneshot, "command")
        assert await settle_lost_task(world, oneshot, "w2") == "failed"
        assert (await store.get_task(oneshot)).failure_reason == "worker w2 lost"
        for task_id in (resumable, oneshot):
            assert {a.outcome for a in await store.attempts(task_id)} == {"interrupted"}
    finally:
        await store.close()
