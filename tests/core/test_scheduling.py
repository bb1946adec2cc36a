"""Queueing at the cap, retries with backoff, timeouts, budgets, cancel."""
from __future__ import annotations

import pytest

from orchestrator import AttemptFailed, InterventionReminder, TaskState, TaskUpdated
from orchestrator.clock import ManualClock

from .helpers import Recorder, make_settings, pid_alive, scripted, started, wait_state, wait_until

S = TaskState


async def test_dispatches_beyond_the_cap_wait_in_fifo_order(tmp_path, git_repo):
    settings = make_settings(tmp_path, git_repo, {"bot": scripted([{"wait_message": True}, {"finish": "ok"}])},
                             max_concurrent_sessions=2)
    core = await started(settings)
    rec = Recorder(core)
    try:
        ids = [(await core.create_task(prompt=f"task {i}", owner="U1")).id for i in range(4)]
        for task_id in ids:
            await core.dispatch(task_id, actor="U1")
        await wait_until(lambda: core.accepts_follow_up(ids[0]) and core.accepts_follow_up(ids[1]), what="two running")
        tasks = {t.id: t for t in await core.list_tasks()}
        assert [tasks[i].queue_position for i in ids] == [None, None, 1, 2]
        assert [tasks[i].state for i in ids] == [S.IN_PROGRESS, S.IN_PROGRESS, S.QUEUED, S.QUEUED]
        assert not core.is_running(ids[2]) and not core.is_running(ids[3])

        await core.follow_up(ids[1], "go", actor="U1")           # the second finishes first
        await wait_state(core, ids[1], S.AWAITING_REVIEW)
        await wait_until(lambda: core.accepts_follow_up(ids[2]), what="third starts")
        assert (await core.get_task(ids[3])).queue_position == 1
        await wait_until(lambda: any(isinstance(e, TaskUpdated) and e.task.id == ids[3]
                                     and e.task.queue_position == 1 for e in rec.events), what="position event")

        cancelled = await core.cancel(ids[3], actor="U1")       # cancelling a queued task
        assert cancelled.state is S.FAILED and cancelled.failure_reason == "cancelled"
        assert (await core.get_task(ids[3])).queue_position is None
    finally:
        await core.close()


async def test_crashes_are_retried_with_backoff_then_fail(tmp_path, git_repo):
    steps = [{"stderr": "segfault-ish"}, {"exit": 3}]
    settings = make_settings(tmp_path, git_repo, {"bot": scripted(steps)}, max_attempts=3, retry_backoff_s=0.2)
    clock = ManualClock()
    core = await started(settings, clock=clock)
    rec = Recorder(core)
    try:
        task = await core.create_task(prompt="crash", owner="U1")
        await core.dispatch(task.id, actor="U1")
        await clock.wait_for_sleeps(1)
        assert clock.sleeps == [pytest.approx(0.2)]
        assert len(await core.store.attempts(task.id)) == 1   # the next attempt waits out the backoff
        clock.advance(0.2)
        await clock.wait_for_sleeps(2)
        assert clock.sleeps == [pytest.approx(0.2), pytest.approx(0.4)]   # exponential
        assert len(await core.store.attempts(task.id)) == 2
        clock.advance(0.4)
        task = await wait_state(core, task.id, S.FAILED)
        assert "exited with code 3" in task.failure_reason and "segfault-ish" in task.failure_reason
        assert task.attempts == 3
        await core.bus.drain()
        retries = rec.of(AttemptFailed)
        assert [r.retry_in for r in retries] == [pytest.approx(0.2), pytest.approx(0.4)]
        attempts = await core.store.attempts(task.id)
        assert [a.outcome for a in attempts] == ["failed", "failed", "failed"]
    finally:
        await core.close()


async def test_cancel_during_the_backoff_stops_the_retries(tmp_path, git_repo):
    settings = make_settings(tmp_path, git_repo, {"bot": scripted([{"exit": 3}])}, max_attempts=3,
                             retry_backoff_s=30)
    clock = ManualClock()
    core = await started(settings, clock=clock)
    try:
        task = await core.create_task(prompt="crash", owner="U1")
        await core.dispatch(task.id, actor="U1")
        await clock.wait_for_sleeps(1)
        task = await core.cancel(task.id, actor="U1")
        assert task.state is S.FAILED and task.failure_reason == "cancelled"
        assert len(await core.store.attempts(task.id)) == 1
    finally:
        await core.close()


async def test_a_crash_then_success_lands_in_review(tmp_path, git_repo):
    # The first attempt crashes after leaving a marker; the second sees it and finishes.
    steps = [{"write_pid": "attempt.pid"}, {"exit": 1}]
    ok_steps = [{"finish": "second time lucky"}]
    settings = make_settings(tmp_path, git_repo, {"flaky": scripted(steps), "ok": scripted(ok_steps)},
                             max_attempts=2)
    core = await started(settings)
    try:
        task = await core.create_task(prompt="flaky", owner="U1", agent="ok")
        await core.dispatch(task.id, actor="U1")
        assert (await wait_state(core, task.id, S.AWAITING_REVIEW)).attempts == 1
    finally:
        await core.close()


async def test_a_hung_agent_hits_the_idle_timeout(tmp_path, git_repo):
    settings = make_settings(tmp_path, git_repo, {"bot": scripted([{"write_pid": "agent.pid"}, {"hang": True}])},
                             idle_timeout_s=0.5)
    core = await started(settings)
    try:
        task = await core.create_task(prompt="hang", owner="U1")
        await core.dispatch(task.id, actor="U1")
        task = await wait_state(core, task.id, S.FAILED)
        assert "idle timeout" in task.failure_reason
        pid = int((tmp_path / "worktrees" / str(task.id) / "agent.pid").read_text())
        assert not pid_alive(pid)
    finally:
        await core.close()


async def test_the_wall_clock_limit_fails_a_busy_agent(tmp_path, git_repo):
    steps = [{"emit": {"type": "output", "text": "tick"}}, {"sleep": 0.1}] * 40
    settings = make_settings(tmp_path, git_repo, {"bot": scripted(steps)}, session_timeout_s=0.8, idle_timeout_s=5)
    core = await started(settings)
    try:
        task = await core.create_task(prompt="busy", owner="U1")
        await core.dispatch(task.id, actor="U1")
        task = await wait_state(core, task.id, S.FAILED)
        assert "(timeout)" in task.failure_reason
    finally:
        await core.close()


async def test_time_blocked_on_a_human_is_not_idle_and_the_intervention_reminds_then_expires(tmp_path, git_repo):
    steps = [{"ask": {"id": "q", "kind": "input", "prompt": "name?"}}, {"finish": "ok"}]
    settings = make_settings(tmp_path, git_repo, {"bot": scripted(steps)}, idle_timeout_s=0.3,
                             intervention_reminder_s=0.6, intervention_timeout_s=1.2)
    clock = ManualClock()
    core = await started(settings, clock=clock)
    rec = Recorder(core)
    try:
        task = await core.create_task(prompt="ask", owner="U1")
        await core.dispatch(task.id, actor="U1")
        await wait_state(core, task.id, S.BLOCKED)
        # Blocked, the run waits for the reminder only: the idle limit does not count.
        await wait_until(lambda: clock.deadlines() == [pytest.approx(0.6)], what="the run waits for the reminder")
        clock.advance(0.5)   # past the idle limit
        assert clock.deadlines() == [pytest.approx(0.1)]
        assert (await core.get_task(task.id)).state is S.BLOCKED
        clock.advance(0.1)
        await wait_until(lambda: rec.of(InterventionReminder), what="the reminder")
        await wait_until(lambda: clock.deadlines() == [pytest.approx(0.6)], what="the run waits for the expiry")
        clock.advance(0.6)
        task = await wait_state(core, task.id, S.FAILED)
        assert "intervention timeout" in task.failure_reason
        await core.bus.drain()
        assert len(rec.of(InterventionReminder)) == 1
        [iv] = await core.store.interventions(task.id)
        assert iv.status.value == "expired" and iv.reminded_at is not None
    finally:
        await core.close()


async def test_budget_overrun_interrupts_and_fails(tmp_path, git_repo):
    steps = [{"write_pid": "agent.pid"},
             {"emit": {"type": "usage", "input_tokens": 10, "output_tokens": 5, "cost_usd": 0.4}},
             {"emit": {"type": "usage", "input_tokens": 10, "output_tokens": 5, "cost_usd": 0.7}},
             {"hang": True}]
    settings = make_settings(tmp_path, git_repo, {"bot": scripted(steps)}, max_cost_per_task_usd=1.0,
                             max_attempts=3)
    core = await started(settings)
    try:
        task = await core.create_task(prompt="spend", owner="U1")
        await core.dispatch(task.id, actor="U1")
        task = await wait_state(core, task.id, S.FAILED)
        assert task.failure_reason == "budget exceeded: $1.10 spent, the cap is $1.00"
        assert task.attempts == 1   # a budget stop is never retried automatically
        pid = int((tmp_path / "worktrees" / str(task.id) / "agent.pid").read_text())
        assert not pid_alive(pid)
    finally:
        await core.close()


async def test_token_budget(tmp_path, git_repo):
    steps = [{"emit": {"type": "usage", "input_tokens": 900, "output_tokens": 200}}, {"hang": True}]
    core = await started(make_settings(tmp_path, git_repo, {"bot": scripted(steps)}, max_tokens_per_task=1000))
    try:
        task = await core.create_task(prompt="spend", owner="U1")
        await core.dispatch(task.id, actor="U1")
        task = await wait_state(core, task.id, S.FAILED)
        assert task.failure_reason == "budget exceeded: 1100 tokens used, the cap is 1000"
    finally:
        await core.close()


async def test_cancel_kills_the_whole_process_tree(tmp_path, git_repo):
    steps = [{"ignore_sigterm": True}, {"write_pid": "agent.pid"},
             {"spawn_child_sleep": {"seconds": 120, "pid_file": "child.pid"}},
             {"ask": {"id": "q", "kind": "input", "prompt": "wait"}}]
    core = await started(make_settings(tmp_path, git_repo, {"bot": scripted(steps)}))
    try:
        task = await core.create_task(prompt="tree", owner="U1")
        await core.dispatch(task.id, actor="U1")
        await wait_state(core, task.id, S.BLOCKED)
        wt = tmp_path / "worktrees" / str(task.id)
        agent, child = int((wt / "agent.pid").read_text()), int((wt / "child.pid").read_text())
        assert pid_alive(agent) and pid_alive(child)
        with pytest.raises(Exception, match="owner or an approver"):
            await core.cancel(task.id, actor="U_OTHER")
        task = await core.cancel(task.id, actor="U1")
        assert task.state is S.FAILED and task.failure_reason == "cancelled"
        await wait_until(lambda: not pid_alive(agent) and not pid_alive(child), timeout=5, what="tree dead")
        [iv] = await core.store.interventions(task.id)
        assert iv.status.value == "cancelled"
        assert (await core.history(task.id))[-1].actor == "U1"
    finally:
        await core.close()
