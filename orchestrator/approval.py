"""What an approval does to the repository, shared by the engine (which carries it out) and
recovery (which settles one a crash cut short)."""
from __future__ import annotations

import asyncio

from .config import OnApprove, RepoConfig
from .models import TaskView
from .workspaces import Workspaces


def approved_reason(action: OnApprove, task: TaskView, repo: RepoConfig | None) -> str:
    return {OnApprove.MERGE: f"approved; merged into {task.base_branch}",
            OnApprove.PUSH: f"approved; pushed to {repo.remote if repo else ''}"}.get(action, "approved")


def on_approve_of(repo: RepoConfig | None) -> OnApprove:
    return repo.on_approve if repo else OnApprove.NONE


async def approval_landed(workspaces: Workspaces, task: TaskView, repo: RepoConfig | None) -> bool:
    """Whether the repository shows the on-approve action done (merged, or pushed)."""
    action = on_approve_of(repo)
    if repo is None or action is OnApprove.NONE:
        return True   # nothing to do but record the approval
    if action is OnApprove.MERGE:
        return await asyncio.to_thread(workspaces.is_merged, repo.path, task.base_branch, task.branch)
    return await asyncio.to_thread(workspaces.is_pushed, repo.path, task.branch, repo.remote)
