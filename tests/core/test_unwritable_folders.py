"""A task whose log or worktree cannot be created fails with the reason; it never stays
"In progress" (issue 8, item 2)."""
from __future__ import annotations

from orchestrator import TaskState

from .helpers import make_settings, scripted, started, wait_state


async def test_an_unwritable_log_folder_fails_the_task_with_the_reason(tmp_path, git_repo):
    in_the_way = tmp_path / "a-file"
    in_the_way.write_text("not a folder\n")
    settings = make_settings(tmp_path, git_repo, {"bot": scripted([{"finish": "done"}])},
                             log_dir=in_the_way / "logs")
    core = await started(settings)
    try:
        task = await core.create_task(prompt="Fix it", owner="U_OWNER")
        await core.dispatch(task.id, actor="U_OWNER")
        failed = await wait_state(core, task.id, TaskState.FAILED)
        assert "cannot write the task's log" in failed.failure_reason
        assert "TASKPIN_LOG_DIR" in failed.failure_reason
    finally:
        await core.close()


async def test_an_unwritable_workspaces_folder_fails_the_task_with_the_reason(tmp_path, git_repo):
    in_the_way = tmp_path / "a-file"
    in_the_way.write_text("not a folder\n")
    settings = make_settings(tmp_path, git_repo, {"bot": scripted([{"finish": "done"}])},
                             workspaces_dir=in_the_way / "worktrees")
    core = await started(settings)
    try:
        task = await core.create_task(prompt="Fix it", owner="U_OWNER")
        await core.dispatch(task.id, actor="U_OWNER")
        failed = await wait_state(core, task.id, TaskState.FAILED)
        assert "could not create the worktree" in failed.failure_reason
        assert str(in_the_way) in failed.failure_reason
    finally:
        await core.close()
