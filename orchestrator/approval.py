"""What an approval does to the repository, shared by the engine (which carries it out) and
recovery (which settles one a crash cut short)."""
from __future__ import annotations

import asyncio

from .config import OnApprove, RepoConfig
from .github import PullRequestRef
from .models import TaskView
from .pull_requests import PR_KEY
from .world import World

# How a failed on-approve action is named to the approver ("could not <verb> <branch>").
ACTION_VERB = {OnApprove.PULL_REQUEST: "open a pull request for"}


def approved_reason(action: OnApprove, task: TaskView, repo: RepoConfig | None) -> str:
    return {OnApprove.MERGE: f"approved; merged into {task.base_branch}",
            OnApprove.PUSH: f"approved; pushed to {repo.remote if repo else ''}",
            OnApprove.PULL_REQUEST: "approved; pull request opened"}.get(action, "approved")


def on_approve_of(repo: RepoConfig | None) -> OnApprove:
    return repo.on_approve if repo else OnApprove.NONE


async def approval_landed(world: World, task: TaskView, repo: RepoConfig | None) -> bool:
    """Whether the repository shows the on-approve action done (merged, pushed, or pushed with
    its pull request recorded)."""
    action = on_approve_of(repo)
    if repo is None or action is OnApprove.NONE:
        return True   # nothing to do but record the approval
    workspaces = world.workspaces
    if action is OnApprove.MERGE:
        return await asyncio.to_thread(workspaces.is_merged, repo.path, task.base_branch, task.branch)
    if action is OnApprove.PULL_REQUEST:
        ref = PullRequestRef.from_dict(await world.store.kv_get(PR_KEY + str(task.id)))
        if ref is None or ref.branch != task.branch:
            return False
    return await asyncio.to_thread(workspaces.is_pushed, repo.path, task.branch, repo.remote)
