"""SIGKILL the process running the core at a bad moment; the next start cleans up."""
from __future__ import annotations

import asyncio
import json
import os
import signal
import subprocess
import sys
from pathlib import Path

from orchestrator import Orchestrator, Settings, TaskState
from orchestrator.store import Store

from .helpers import make_settings, pid_alive, scripted, wait_state, wait_until

S = TaskState
HERE = Path(__file__).resolve().parent


def _settings_json(settings: Settings) -> dict:
    return json.loads(settings.model_dump_json(exclude={"config"}))


async def _run_core_and_kill(tmp_path, settings: Settings, actions: list[dict], ready) -> list[int]:
    (tmp_path / "settings.json").write_text(json.dumps(_settings_json(settings)))
    (tmp_path / "actions.json").write_text(json.dumps(actions))
    proc = await asyncio.create_subprocess_exec(
        sys.executable, str(HERE / "core_process.py"), str(tmp_path / "settings.json"),
        str(tmp_path / "actions.json"), stdout=subprocess.PIPE, cwd=str(HERE.parent.parent),
        env={**os.environ, "PYTHONPATH": str(HERE.parent.parent)})
    line = (await asyncio.wait_for(proc.stdout.readline(), 30)).decode()
    assert line.startswith("READY"), line
    ids = [int(x) for x in line.split()[1:]]
    await wait_until(ready, timeout=15, what="core busy")
    proc.send_signal(signal.SIGKILL)
    await proc.wait()
    return ids


async def test_sigkill_mid_session_fails_running_tasks_kills_orphans_and_keeps_the_queue(tmp_path, git_repo, db_url):
    hang = [{"write_pid": "agent.pid"}, {"spawn_child_sleep": {"seconds": 120, "pid_file": "child.pid"}},
            {"ask": {"id": "q", "kind": "input", "prompt": "still there?"}}]
    settings = make_settings(tmp_path, git_repo, {"bot": scripted(hang), "quick": scripted([{"finish": "ok"}])},
                             db_url=db_url, max_concurrent_sessions=1)
    actions = [{"create": {"prompt": "runs", "owner": "U1"}, "dispatch": True},
               {"create": {"prompt": "queued", "owner": "U1", "agent": "quick"}, "dispatch": True},
               {"create": {"prompt": "backlog", "owner": "U1"}}]
    child_pid = tmp_path / "worktrees" / "1" / "child.pid"
    observer = await Store.open(settings.database_url)   # a second process-like view of the store

    async def blocked_on_a_human():
        return child_pid.exists() and bool(await observer.interventions(1))

    try:
        ids = await _run_core_and_kill(tmp_path, settings, actions, blocked_on_a_human)
    finally:
        await observer.close()
    child = int(child_pid.read_text())
    assert pid_alive(child)   # the grandchild outlived the killed core

    core = await Orchestrator.open(settings)
    await core.start()
    try:
        running, queued, backlog = ids
        task = await core.get_task(running)
        assert task.state is S.FAILED and task.failure_reason == "interrupted by restart"
        await wait_until(lambda: not pid_alive(child), timeout=5, what="orphan killed")
        [iv] = await core.store.interventions(running)
        assert iv.status.value == "cancelled"
        await wait_state(core, queued, S.AWAITING_REVIEW)   # the queued dispatch was kept and ran
        assert (await core.get_task(backlog)).state is S.BACKLOG
        assert len(await core.list_tasks()) == 3            # nothing lost, nothing duplicated
        await core.retry(running, actor="U1")               # retryable
        assert (await core.get_task(running)).state is S.BACKLOG
    finally:
        await core.close()


async def test_a_resumable_agent_resumes_its_session_after_restart(tmp_path, git_repo):
    # The agent reports a session id; when resumed it sees TASKPIN_RESUME_SESSION and finishes.
    steps = [{"emit": {"type": "session", "id": "sess-42"}}, {"echo_env": ["TASKPIN_RESUME_SESSION"]},
             {"echo_prompt": True}, {"write_pid": "agent.pid"}, {"sleep": 1.0}, {"finish": "done"}]
    settings = make_settings(tmp_path, git_repo, {"bot": scripted(steps, resume=True)})
    observer = await Store.open(settings.database_url)

    async def session_id_stored():
        return await observer.last_session_id(1) == "sess-42"

    try:
        await _run_core_and_kill(tmp_path, settings,
                                 [{"create": {"prompt": "long job", "owner": "U1"}, "dispatch": True}],
                                 session_id_stored)
    finally:
        await observer.close()
    core = await Orchestrator.open(settings)
    await core.start()
    try:
        task = await wait_state(core, 1, S.AWAITING_REVIEW)
        log = core.tail_log(task.id)
        assert "env TASKPIN_RESUME_SESSION=sess-42" in log
        assert any(line.startswith("prompt: taskpin was restarted") for line in log)
        reasons = [h.reason for h in await core.history(task.id)]
        assert "interrupted by restart" not in reasons
        assert [a.outcome for a in await core.store.attempts(task.id)] == ["interrupted", "finished"]
    finally:
        await core.close()


async def test_graceful_close_then_start_does_not_lose_a_running_task(tmp_path, git_repo):
    steps = [{"hang": True}]
    settings = make_settings(tmp_path, git_repo, {"bot": scripted(steps)})
    core = await Orchestrator.open(settings)
    await core.start()
    task = await core.create_task(prompt="x", owner="U1")
    await core.dispatch(task.id, actor="U1")
    await wait_until(lambda: core.is_running(task.id), what="running")
    await core.close()
    core = await Orchestrator.open(settings)
    await core.start()
    try:
        task = await core.get_task(task.id)
        assert task.state is S.FAILED and task.failure_reason == "interrupted by restart"
    finally:
        await core.close()
