"""on_approve = "pull_request": push the task branch and open (or find) its pull request.

Idempotent by construction, so approving twice, or again after an error, never opens two:
the open pull request for the branch is looked up before one is created, and a 422 "already
exists" (someone, or a previous attempt GitHub finished after all, opened it meanwhile) is
answered by looking it up again. The pull request is remembered in the key-value store
(PR_KEY + task id); when changes were requested on a task that has one, the agent's new
commits are pushed to the same branch as soon as the task is back in review.

The core knows nothing of Slack: the surface may set `task_link`, which gives the address of a
task's page (its Slack thread), for the pull request's description.
"""
from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING

from .config import OnApprove, RepoConfig
from .errors import ActionRefused
from .events import Event, Subscription, TaskNotice, TaskStateChanged
from .github import GitHub, GitHubError, PullRequestRef, repo_from_remote_url
from .states import TaskState

if TYPE_CHECKING:
    from .models import TaskView
    from .world import World

log = logging.getLogger(__name__)
PR_KEY = "pull_request:"
FILES_LISTED = 30
SUMMARY_MAX = 20_000


def describe_diff(task: "TaskView") -> str:
    diff = task.diff
    if diff is None:
        return ""
    noun = "file" if diff.files_changed == 1 else "files"
    lines = [f"**Changes:** +{diff.insertions} −{diff.deletions} in {diff.files_changed} {noun}"]
    lines += [f"- `{name}`" for name in diff.files[:FILES_LISTED]]
    if len(diff.files) > FILES_LISTED:
        lines.append(f"- …and {len(diff.files) - FILES_LISTED} more")
    return "\n".join(lines)


def pull_request_body(task: "TaskView", summary: str, link: str | None) -> str:
    parts = [summary.strip()[:SUMMARY_MAX] or "_The agent left no summary._", describe_diff(task)]
    if link:
        parts.append(f"Discussion: {link}")
    parts.append(f"<sub>Opened by taskpin for task {task.short_id} ({task.agent}).</sub>")
    return "\n\n".join(p for p in parts if p)


def github_repo_of(name: str, repo: RepoConfig) -> str:
    """owner/name on GitHub: `github_repo`, else read from the remote's URL."""
    if repo.github_repo:
        return repo.github_repo
    import git

    try:
        url = git.Repo(repo.path).remote(repo.remote).url
    except (ValueError, git.exc.GitError, OSError):
        url = ""
    found = repo_from_remote_url(url)
    if not found:
        raise ActionRefused(f"taskpin cannot tell which GitHub repository {name} is (remote {repo.remote!r} is "
                            f"not a GitHub URL); set github_repo = \"owner/name\" in [repos.{name}], then approve "
                            "again")
    return found


class PullRequests:
    def __init__(self, world: "World"):
        self.world = world
        # Set by the surface: task id -> the address of the task's page there (a Slack thread).
        self.task_link: Callable[[int], Awaitable[str | None]] | None = None
        self._sub: Subscription | None = None

    def start(self) -> None:
        self._sub = self.world.bus.subscribe(self._on_event, name="pull-requests")

    # ---- reads -------------------------------------------------------------------------------

    async def get(self, task_id: int) -> PullRequestRef | None:
        return PullRequestRef.from_dict(await self.world.store.kv_get(PR_KEY + str(task_id)))

    async def urls(self) -> dict[int, str]:
        """task id -> its pull request's address, for cards."""
        items = await self.world.store.kv_items(PR_KEY)
        refs = {int(key[len(PR_KEY):]): PullRequestRef.from_dict(value) for key, value in items.items()}
        return {task_id: ref.url for task_id, ref in refs.items() if ref is not None}

    def github_repo(self, name: str, repo: RepoConfig) -> str:
        return github_repo_of(name, repo)

    def client(self, repo: RepoConfig) -> GitHub:
        settings = self.world.settings
        if settings.github_token is None:
            raise ActionRefused("pull requests need a GitHub token: set TASKPIN_GITHUB_TOKEN (or GITHUB_TOKEN) "
                                "where taskpin runs, restart it, then approve again")
        return GitHub(settings.github_token.get_secret_value(), repo.github_api_url or settings.github_api_url,
                      retries=settings.github_retries, timeout_s=settings.github_timeout_s)

    def precheck(self, task: "TaskView", repo: RepoConfig) -> None:
        """What can be told before the approval takes the task (it stays in review)."""
        self.client(repo)
        self.github_repo(task.repo, repo)

    # ---- the approval's action -----------------------------------------------------------------

    async def open(self, task: "TaskView", repo: RepoConfig) -> PullRequestRef:
        """Push the branch, then the branch's open pull request, or a new one. Raises
        ActionRefused (the task goes back to review) with what to do."""
        github_repo = self.github_repo(task.repo, repo)
        await asyncio.to_thread(self.world.workspaces.push, repo.path, task.branch, repo.remote)
        summary = await self._agent_summary(task.id)
        link = await self._link(task.id)
        try:
            async with self.client(repo) as github:
                ref = await github.find_open_pull(github_repo, task.branch)
                opened = ref is None
                if ref is None:
                    ref = await github.create_pull(github_repo, branch=task.branch, base=task.base_branch,
                                                   title=task.title, body=pull_request_body(task, summary, link))
                if ref is None:   # 422: it exists after all (a previous attempt's POST landed)
                    opened = False
                    ref = await github.find_open_pull(github_repo, task.branch)
                if ref is None:
                    raise GitHubError(f"GitHub says a pull request for {task.branch} exists on {github_repo} but "
                                      "lists none open; look at its pull requests, then approve again")
        except GitHubError as exc:
            raise ActionRefused(str(exc)) from None
        await self.world.store.kv_set(PR_KEY + str(task.id), ref.to_dict())
        self.world.logs.append(task.id, f"[taskpin] pull request {ref.label}: {ref.url}")
        self.world.bus.publish(TaskNotice(task, "pull request opened:" if opened else "pull request updated:",
                                         link=ref.url, link_text=ref.label))
        return ref

    async def landed(self, task: "TaskView", repo: RepoConfig) -> bool:
        """For recovery: whether an interrupted approval got as far as its pull request."""
        ref = await self.get(task.id)
        if ref is None or ref.branch != task.branch:
            return False
        return await asyncio.to_thread(self.world.workspaces.is_pushed, repo.path, task.branch, repo.remote)

    # ---- after changes were requested --------------------------------------------------------------

    async def _on_event(self, event: Event) -> None:
        if not (isinstance(event, TaskStateChanged) and event.to_state is TaskState.AWAITING_REVIEW
                and event.from_state in (TaskState.IN_PROGRESS, TaskState.BLOCKED)):
            return
        task = event.task
        repo = self.world.settings.repos.get(task.repo)
        if repo is None or repo.on_approve is not OnApprove.PULL_REQUEST:
            return
        workspaces = self.world.workspaces
        ref = await self.get(task.id)
        try:
            # Pushed before (an approval that opened the pull request, or got as far as the push):
            # keep the remote branch, and so its pull request, up to date with the review.
            if ref is None and not await asyncio.to_thread(workspaces.remote_head, repo.path, task.branch,
                                                           repo.remote):
                return
            await asyncio.to_thread(workspaces.push, repo.path, task.branch, repo.remote)
        except Exception as exc:
            where = ref.label if ref else f"{repo.remote}/{task.branch}"
            self.world.bus.publish(TaskNotice(task, f"could not push the new commits to {where}: {exc}; "
                                                   "approving pushes them again", warning=True))
            return
        self.world.logs.append(task.id, f"[taskpin] pushed the new commits of {task.branch} to {repo.remote}")
        if ref is not None:
            self.world.bus.publish(TaskNotice(task, "new commits pushed to", link=ref.url, link_text=ref.label))
        else:
            self.world.bus.publish(TaskNotice(task, f"new commits pushed to {task.branch} on {repo.remote}: its "
                                                   "pull request, if one is open, shows them"))

    # ---- what goes into the description ---------------------------------------------------------

    async def _agent_summary(self, task_id: int) -> str:
        for record in reversed(await self.world.store.transitions(task_id)):
            if record.to_state is TaskState.AWAITING_REVIEW and record.actor == "agent":
                return record.reason
        return ""

    async def _link(self, task_id: int) -> str | None:
        if self.task_link is None:
            return None
        try:
            return await self.task_link(task_id)
        except Exception as exc:   # a description without the link is still a pull request
            log.info("no link for task #%s: %s", task_id, exc)
            return None
