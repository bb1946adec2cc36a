"""Worktree retention: which worktrees of finished tasks go, which stay and why; `taskpin gc`."""
from __future__ import annotations

import subprocess
import sys
from datetime import timedelta
from pathlib import Path

from orchestrator import TaskState
from orchestrator.retention import _changed_paths, collect, due, unsaved_work
from orchestrator.store.tables import utcnow
from tests.cli_helpers import clean_env

from .helpers import make_settings, scripted, started, wait_state

S = TaskState
LATER = timedelta(days=8)


def _git(cwd, *args) -> str:
    return subprocess.run(["git", *args], cwd=cwd, check=True, capture_output=True, text=True).stdout.strip()


def test_due_after_the_retention_period_only():
    now = utcnow()
    assert due(now - timedelta(days=7), now, 7)
    assert not due(now - timedelta(days=6, hours=23), now, 7)
    assert due(now - timedelta(hours=13), now, 0.5)


def test_changed_paths_reads_renames_and_untracked_files():
    assert _changed_paths("R  new.py\0old.py\0?? notes.txt\0 M app.py\0") == ["new.py", "notes.txt", "app.py"]
    assert _changed_paths("") == []


def test_unsaved_work_sees_changes_and_commits_on_no_ref(tmp_path, git_repo):
    worktree = tmp_path / "wt"
    _git(git_repo, "worktree", "add", "-q", "-b", "task", str(worktree), "main")
    assert unsaved_work(worktree) is None
    (worktree / ".env").write_text("X=1\n")
    assert "uncommitted changes (.env)" in unsaved_work(worktree)
    assert unsaved_work(worktree, ignore=(".env",)) is None, "a file taskpin copied in is not the agent's work"
    (worktree / "app.py").write_text("changed\n")
    assert "uncommitted changes (app.py)" in unsaved_work(worktree, ignore=(".env",))
    _git(worktree, "commit", "-qam", "on the branch")
    assert unsaved_work(worktree, ignore=(".env",)) is None, "a commit on a branch is not lost with the worktree"
    _git(worktree, "checkout", "-q", "--detach")
    (worktree / "app.py").write_text("detached\n")
    _git(worktree, "commit", "-qam", "detached work")
    assert "1 commit(s) on no branch" in unsaved_work(worktree, ignore=(".env",))
    assert "not a git worktree" in unsaved_work(tmp_path / "nowhere")


async def _finished_tasks(core, git_repo):
    """Three finished tasks: one completed and clean, one failed with an edit nobody committed,
    one failed and clean."""
    ids = []
    for n in range(3):
        task = await core.create_task(prompt=f"Task {n}", owner="U1")
        await core.dispatch(task.id, actor="U1")
        await wait_state(core, task.id, S.AWAITING_REVIEW)
        if n == 0:
            await core.approve(task.id, actor="U1")
        else:
            await core.reject(task.id, actor="U1")
        ids.append(task.id)
    dirty = Path((await core.get_task(ids[1])).worktree)
    (dirty / "notes.txt").write_text("a human was here\n")
    return ids


async def test_collect_removes_old_clean_worktrees_and_keeps_unsaved_work(tmp_path, git_repo):
    agent = scripted([{"write_file": {"path": "out.txt", "content": "x\n"}}, {"finish": "done"}])
    core = await started(make_settings(tmp_path, git_repo, {"bot": agent}))
    try:
        done, dirty, failed = await _finished_tasks(core, git_repo)
        assert await collect(core) == [], "nothing is due yet"
        verdicts = {v.task_id: v for v in await collect(core, dry_run=True, now=utcnow() + LATER)}
        assert verdicts[done].remove and verdicts[failed].remove
        assert not verdicts[dirty].remove and "notes.txt" in verdicts[dirty].why
        for task_id in (done, dirty, failed):
            assert Path((await core.get_task(task_id)).worktree).exists(), "the dry run removed a worktree"

        await collect(core, now=utcnow() + LATER)
        for task_id in (done, failed):
            task = await core.get_task(task_id)
            assert task.worktree is None and not (tmp_path / "worktrees" / str(task_id)).exists()
            assert _git(git_repo, "rev-parse", task.branch), "the branch (and its commits) stay"
        assert (Path((await core.get_task(dirty)).worktree) / "notes.txt").exists()

        # A failed task whose worktree went can still be retried: the branch comes back checked out.
        await core.retry(failed, actor="U1")
        await core.dispatch(failed, actor="U1")
        task = await wait_state(core, failed, S.AWAITING_REVIEW)
        assert (Path(task.worktree) / "out.txt").exists()
    finally:
        await core.close()


async def test_taskpin_gc_dry_run_lists_and_gc_removes(tmp_path, git_repo):
    settings = make_settings(tmp_path, git_repo, {"bot": scripted([{"finish": "done"}])})
    core = await started(settings)
    try:
        ids = []
        for n in range(2):
            task = await core.create_task(prompt=f"Task {n}", owner="U1")
            await core.dispatch(task.id, actor="U1")
            await wait_state(core, task.id, S.AWAITING_REVIEW)
            await core.reject(task.id, actor="U1")
            await core.store.update_task(task.id, state_changed_at=utcnow() - LATER)
            ids.append(task.id)
    finally:
        await core.close()
    old, dirty = ids
    (tmp_path / "worktrees" / str(dirty) / "wip.txt").write_text("unfinished\n")
    (tmp_path / "taskpin.toml").write_text(f'''
database_url = "{settings.database_url}"
workspaces_dir = "{settings.workspaces_dir}"
[repos.app]
path = "{git_repo}"
[agents.bot]
command = ["{sys.executable}", "-c", "print(1)"]
''')

    def gc(*args):
        return subprocess.run([sys.executable, "-m", "bot.cli", "gc", *args], cwd=tmp_path, env=clean_env(),
                              capture_output=True, text=True, timeout=60)
    dry = gc("--dry-run")
    assert dry.returncode == 0, dry.stderr
    assert f"would remove #{old} " in dry.stdout
    assert f"kept #{dirty} " in dry.stdout and "wip.txt" in dry.stdout
    assert "1 worktree(s) would go, 1 kept" in dry.stdout
    assert (tmp_path / "worktrees" / str(old)).exists()

    real = gc()
    assert real.returncode == 0, real.stderr
    assert f"removed #{old} " in real.stdout and "Traceback" not in real.stderr
    assert not (tmp_path / "worktrees" / str(old)).exists()
    assert (tmp_path / "worktrees" / str(dirty) / "wip.txt").exists()
