"""A new task never takes another task's branch or worktree, even when ids repeat.

After the database was deleted, a new #1 with the same title used to check out the old #1's
branch: its review showed the old task's files, and approving it would have merged them.
"""
from __future__ import annotations

import subprocess
from pathlib import Path

from orchestrator import TaskState
from orchestrator.workspaces import Workspaces

from .helpers import make_settings, scripted, started, wait_state

S = TaskState


def _git(repo, *args) -> str:
    return subprocess.run(["git", *args], cwd=repo, check=True, capture_output=True, text=True).stdout.strip()


def _writes(path: str) -> dict:
    return {"bot": scripted([{"write_file": {"path": path, "content": f"{path}\n"}}, {"finish": "ok"}])}


async def _to_review(core, title: str):
    task = await core.create_task(prompt="do it", title=title, owner="U1")
    await core.dispatch(task.id, actor="U1")
    return await wait_state(core, task.id, S.AWAITING_REVIEW)


async def test_a_reset_database_does_not_hand_the_old_branch_to_the_new_task(tmp_path, git_repo):
    db = tmp_path / "core.db"
    core = await started(make_settings(tmp_path, git_repo, _writes("old.txt")))
    try:
        old = await _to_review(core, "Add a greeting")
    finally:
        await core.close()
    old_head = _git(git_repo, "rev-parse", old.branch)
    for leftover in tmp_path.glob("core.db*"):   # the user deletes the database
        leftover.unlink()
    assert not db.exists()

    core = await started(make_settings(tmp_path, git_repo, _writes("new.txt")))
    try:
        new = await _to_review(core, "Add a greeting")
        assert new.id == old.id   # the same id and title: the same default branch name
        assert new.branch != old.branch and new.branch.startswith(old.branch)
        assert new.diff.files == ("new.txt",), "the review shows only the new task's own work"
        assert _git(git_repo, "rev-parse", old.branch) == old_head, "the old branch is intact"
        assert "old.txt" in _git(git_repo, "ls-tree", "--name-only", old.branch)
        assert Path(old.worktree, "old.txt").exists() and new.worktree != old.worktree
        assert not Path(new.worktree, "old.txt").exists()
        # A retry of the new task keeps its own branch and folder.
        await core.reject(new.id, actor="U1")
        await core.retry(new.id, actor="U1")
        await core.dispatch(new.id, actor="U1")
        again = await wait_state(core, new.id, S.AWAITING_REVIEW)
        assert (again.branch, again.worktree) == (new.branch, new.worktree)
    finally:
        await core.close()


def test_create_for_keeps_its_own_branch_and_steps_around_foreign_ones(tmp_path, git_repo):
    ws = Workspaces(tmp_path / "wt")
    path, branch = ws.create_for(git_repo, "main", 1, "taskpin/1-x", "1@a")
    assert (path, branch) == (ws.path_for(1), "taskpin/1-x")
    assert ws.create_for(git_repo, "main", 1, "taskpin/1-x", "1@a") == (path, branch)   # ours: reused
    other_path, other = ws.create_for(git_repo, "main", 1, "taskpin/1-x", "1@b")        # not ours
    assert other == "taskpin/1-x-2" and other_path == tmp_path / "wt" / "1-2"
    assert ws.branch_mark(git_repo, "taskpin/1-x") == "1@a" and ws.branch_mark(git_repo, other) == "1@b"
    # A branch from before marks existed: adopted by a task that ran before, not by a new one.
    _git(git_repo, "branch", "taskpin/5-y", "main")
    _, fresh = ws.create_for(git_repo, "main", 5, "taskpin/5-y", "5@new")
    assert fresh == "taskpin/5-y-2"
    ws.remove(5, git_repo, tmp_path / "wt" / "5")
    _, adopted = ws.create_for(git_repo, "main", 6, "taskpin/5-y", "6@old", adopt_unmarked=False)
    assert adopted == "taskpin/5-y-3"
    _git(git_repo, "branch", "taskpin/7-z", "main")
    _, kept = ws.create_for(git_repo, "main", 7, "taskpin/7-z", "7@old", adopt_unmarked=True)
    assert kept == "taskpin/7-z" and ws.branch_mark(git_repo, kept) == "7@old"
