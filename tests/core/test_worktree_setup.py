"""Ready-to-run worktrees through the core: copied files, setup commands, per-task ports,
with real agent processes, real git worktrees and a real store."""
from __future__ import annotations

import subprocess
import sys

from orchestrator import Answer, TaskNotice, TaskState
from orchestrator.ports import PortPool
from orchestrator.worktree_setup import is_ready

from .helpers import Recorder, make_settings, scripted, started, wait_state, wait_until

S = TaskState
PY = sys.executable
ASK = {"ask": {"id": "q", "kind": "question", "prompt": "go on?", "options": [{"id": "y", "label": "Yes"}]}}


def repos(repo, **fields) -> dict:
    return {"app": {"path": str(repo), "base_branch": "main", **fields}}


def _git(cwd, *args) -> str:
    return subprocess.run(["git", *args], cwd=cwd, check=True, capture_output=True, text=True).stdout.strip()


def log_text(core, task_id: int) -> str:
    return "\n".join(core.tail_log(task_id, 500))


async def test_copy_setup_and_ports_reach_the_agent_and_copies_are_never_committed(tmp_path, git_repo, db_url):
    (git_repo / ".env").write_text("SECRET=local\n")
    (git_repo / "config").mkdir()
    (git_repo / "config" / "local.yml").write_text("debug: true\n")
    setup = [[PY, "-c", "import os; open('setup-ran.txt','w').write(os.environ['PORT'] + ' ' + "
                        "os.environ['TASKPIN_PORT_BASE']); print('installed 42 packages')"]]
    agent = scripted([{"echo_env": ["PORT", "TASKPIN_PORT_BASE", "TASKPIN_PORT_COUNT"]},
                      {"write_file": {"path": "feature.txt", "content": "x\n"}}, {"finish": "done"}])
    settings = make_settings(tmp_path, git_repo, {"bot": agent}, db_url=db_url, port_base=31000,
                             repos=repos(git_repo, copy=[".env", "config/local.yml", "missing.yml"], setup=setup,
                                         ports=10))
    core = await started(settings)
    rec = Recorder(core)
    try:
        task = await core.create_task(prompt="Add a feature", owner="U1")
        await core.dispatch(task.id, actor="U1")
        task = await wait_state(core, task.id, S.AWAITING_REVIEW)
        worktree = tmp_path / "worktrees" / str(task.id)
        assert (worktree / ".env").read_text() == "SECRET=local\n"
        assert (worktree / "config" / "local.yml").read_text() == "debug: true\n"
        assert (worktree / "setup-ran.txt").read_text() == "31000 31000"
        log = log_text(core, task.id)
        assert "[setup] installed 42 packages" in log
        assert "env PORT=31000" in log and "env TASKPIN_PORT_BASE=31000" in log and "env TASKPIN_PORT_COUNT=10" in log
        # The copied files are local configuration: never on the task's branch.
        committed = _git(git_repo, "show", "--name-only", "--format=", task.branch).split()
        assert ".env" not in committed and "config/local.yml" not in committed
        assert "feature.txt" in committed and "setup-ran.txt" in committed
        await wait_until(lambda: any("missing.yml does not exist" in e.text for e in rec.of(TaskNotice)),
                         what="the warning about missing.yml")
        await wait_until(lambda: core.ports.held() == {}, what="the port range released after the run")
        assert is_ready(worktree)
    finally:
        await core.close()


async def test_failing_setup_fails_the_task_with_its_last_lines_and_retry_runs_it_again(tmp_path, git_repo):
    flag = tmp_path / "deps-available"
    setup = [[PY, "-c", f"import os,sys; print('resolving deps'); ok=os.path.exists({str(flag)!r}); "
                        "print('ERR! missing peer dependency' if not ok else 'ok'); sys.exit(0 if ok else 1)"]]
    settings = make_settings(tmp_path, git_repo, {"bot": scripted([{"finish": "done"}])},
                             repos=repos(git_repo, setup=setup))
    core = await started(settings)
    try:
        task = await core.create_task(prompt="Fix it", owner="U1")
        await core.dispatch(task.id, actor="U1")
        failed = await wait_state(core, task.id, S.FAILED)
        assert "exited with 1" in failed.failure_reason and "ERR! missing peer dependency" in failed.failure_reason
        assert "resolving deps" in failed.failure_reason
        assert not any("attempt 1 starting" in line for line in core.tail_log(task.id, 100)), "the agent started"
        flag.write_text("yes")
        await core.retry(task.id, actor="U1")
        await core.dispatch(task.id, actor="U1")
        await wait_state(core, task.id, S.AWAITING_REVIEW)
        assert log_text(core, task.id).count("[setup] $ ") == 2
    finally:
        await core.close()


async def test_a_setup_command_that_does_not_exist_fails_clearly(tmp_path, git_repo):
    settings = make_settings(tmp_path, git_repo, {"bot": scripted([{"finish": "done"}])},
                             repos=repos(git_repo, setup=[["no-such-tool-xyz", "install"]]))
    core = await started(settings)
    try:
        task = await core.create_task(prompt="Fix it", owner="U1")
        await core.dispatch(task.id, actor="U1")
        failed = await wait_state(core, task.id, S.FAILED)
        assert "`no-such-tool-xyz` was not found on PATH" in failed.failure_reason
        assert "retry" in failed.failure_reason
    finally:
        await core.close()


async def test_a_hanging_setup_times_out(tmp_path, git_repo):
    setup = [[PY, "-c", "import time; print('downloading', flush=True); time.sleep(60)"]]
    settings = make_settings(tmp_path, git_repo, {"bot": scripted([{"finish": "done"}])},
                             repos=repos(git_repo, setup=setup, setup_timeout_s=0.5))
    core = await started(settings)
    try:
        task = await core.create_task(prompt="Fix it", owner="U1")
        await core.dispatch(task.id, actor="U1")
        failed = await wait_state(core, task.id, S.FAILED)
        assert "timed out after 0.5s" in failed.failure_reason and "downloading" in failed.failure_reason
    finally:
        await core.close()


async def test_setup_runs_once_per_worktree_not_again_after_changes_are_requested(tmp_path, git_repo):
    counter = tmp_path / "setup-count"
    setup = [[PY, "-c", f"p={str(counter)!r}; import os; n=int(open(p).read()) if os.path.exists(p) else 0; "
                        "open(p,'w').write(str(n+1))"]]
    settings = make_settings(tmp_path, git_repo, {"bot": scripted([{"finish": "done"}])},
                             repos=repos(git_repo, setup=setup))
    core = await started(settings)
    try:
        task = await core.create_task(prompt="Fix it", owner="U1")
        await core.dispatch(task.id, actor="U1")
        await wait_state(core, task.id, S.AWAITING_REVIEW)
        await core.request_changes(task.id, "and the other one", actor="U1")
        await wait_until(lambda: sum("finished:" in x for x in core.tail_log(task.id, 200)) >= 2, what="second run")
        await wait_state(core, task.id, S.AWAITING_REVIEW)
        assert counter.read_text() == "1"
    finally:
        await core.close()


async def test_live_tasks_get_distinct_port_ranges_released_when_they_end(tmp_path, git_repo):
    agent = scripted([{"echo_env": ["PORT"]}, ASK, {"finish": "done"}])
    settings = make_settings(tmp_path, git_repo, {"bot": agent}, port_base=32000,
                             repos=repos(git_repo, ports=5), max_concurrent_sessions=3)
    core = await started(settings)
    try:
        tasks = [await core.create_task(prompt=f"Task {n}", owner="U1") for n in range(3)]
        for task in tasks:
            await core.dispatch(task.id, actor="U1")
        for task in tasks:
            await wait_state(core, task.id, S.BLOCKED)
        held = core.ports.held()
        assert sorted(held.values()) == [32000, 32005, 32010]
        for task in tasks:
            assert f"env PORT={held[task.id]}" in log_text(core, task.id)
        for iv in await core.pending_interventions():
            await core.answer(iv.id, Answer(("y",)), actor="U1")
        for task in tasks:
            await wait_state(core, task.id, S.AWAITING_REVIEW)
        await wait_until(lambda: core.ports.held() == {}, what="the ranges released")
    finally:
        await core.close()


def test_port_pool_reuses_released_ranges_and_says_when_it_is_full():
    pool = PortPool(65530, 3)
    assert pool.slots == 2
    assert pool.acquire(1) == 65530 and pool.acquire(1) == 65530
    assert pool.acquire(2) == 65533
    assert pool.acquire(3) is None
    pool.release(1)
    assert pool.acquire(3) == 65530
