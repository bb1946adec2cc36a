"""Worktree retention: the worktrees of completed and failed tasks go after
`worktree_retention_days`, unless something in them would be lost.

A worktree holds work that exists nowhere else when it has changes git does not have yet
(modified, staged or untracked files that are not ignored; the files taskpin copied in do not
count) or when its HEAD has commits no branch, tag or remote-tracking ref reaches (a detached
HEAD someone committed on). The task branch itself stays: removing the worktree never loses
a commit on it, and Retry checks it out again.
"""
from __future__ import annotations

import asyncio
import logging
from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path
from typing import TYPE_CHECKING

import git

from .states import TaskState
from .store.tables import utcnow

if TYPE_CHECKING:
    from .models import TaskView
    from .world import World

log = logging.getLogger(__name__)
RETAINED_STATES = (TaskState.COMPLETED, TaskState.FAILED)


@dataclass(frozen=True)
class Verdict:
    task_id: int
    worktree: Path
    remove: bool
    why: str          # why it goes, or why it stays


def due(finished: datetime, now: datetime, retention_days: float) -> bool:
    return now - finished >= timedelta(days=retention_days)


def unsaved_work(worktree: Path, ignore: tuple[str, ...] = ()) -> str | None:
    """What in the worktree exists nowhere else, in a few words; None when nothing does."""
    try:
        repo = git.Repo(worktree)
    except (git.InvalidGitRepositoryError, git.NoSuchPathError):
        return "it is not a git worktree any more (left for you to look at)"
    try:
        changed = [path for path in _changed_paths(repo.git.status("--porcelain=v1", "-z", "--untracked-files=all"))
                   if not any(path == p or path.startswith(p.rstrip("/") + "/") for p in ignore)]
        if changed:
            return f"it has uncommitted changes ({', '.join(changed[:3])}{' …' if len(changed) > 3 else ''})"
        if not repo.git.rev_parse("--verify", "--quiet", "HEAD", with_exceptions=False):
            return None   # an unborn branch: no commit to lose
        only_here = repo.git.rev_list("--count", "HEAD", "--not", "--branches", "--tags", "--remotes")
        if int(only_here or 0):
            return f"its HEAD has {only_here} commit(s) on no branch, tag or remote"
    except git.GitCommandError as exc:
        return f"git could not tell whether it holds unsaved work ({exc.status})"
    return None


def _changed_paths(porcelain_z: str) -> list[str]:
    """Paths from `git status --porcelain=v1 -z`: "XY path", a rename's old path after it."""
    paths, entries = [], iter(porcelain_z.split("\0"))
    for entry in entries:
        if len(entry) < 4:
            continue
        paths.append(entry[3:])
        if entry[0] in "RC":
            next(entries, None)
    return paths


def judge(task: "TaskView", now: datetime, retention_days: float, ignore: tuple[str, ...] = ()) -> Verdict | None:
    """What happens to a finished task's worktree now; None when it has none (or is not due)."""
    if task.state not in RETAINED_STATES or not task.worktree or not Path(task.worktree).exists():
        return None
    finished = task.state_changed_at
    path = Path(task.worktree)
    if not due(finished, now, retention_days):
        return None
    problem = unsaved_work(path, ignore)
    if problem:
        return Verdict(task.id, path, False, f"kept: {problem}")
    age = (now - finished).total_seconds() / 86400
    return Verdict(task.id, path, True, f"{task.state.value} {age:.0f} day(s) ago")


async def plan(world: "World", now: datetime | None = None) -> list[Verdict]:
    now = now or utcnow()
    verdicts = []
    for task in await world.store.list_tasks(states=RETAINED_STATES):
        repo = world.settings.repos.get(task.repo)
        ignore = tuple(repo.copy_files) if repo else ()
        verdict = await asyncio.to_thread(judge, task, now, world.settings.worktree_retention_days, ignore)
        if verdict is not None:
            verdicts.append(verdict)
    return verdicts


async def collect(world: "World", *, dry_run: bool = False, now: datetime | None = None) -> list[Verdict]:
    """Remove the worktrees that are due and hold nothing unsaved; the verdicts, for a report."""
    verdicts = await plan(world, now)
    if dry_run:
        return verdicts
    done = []
    for verdict in verdicts:
        if not verdict.remove:
            done.append(verdict)
            continue
        task = await world.store.get_task(verdict.task_id)
        repo = world.settings.repos.get(task.repo)
        if task.state not in RETAINED_STATES or repo is None:   # retried meanwhile, or no repo to ask git
            continue
        try:
            await asyncio.to_thread(world.workspaces.remove, task.id, repo.path, verdict.worktree)
        except Exception as exc:
            done.append(Verdict(task.id, verdict.worktree, False, f"could not be removed: {exc}"))
            continue
        await world.store.update_task(task.id, worktree=None)
        log.info("removed the worktree of task #%s (%s)", task.id, verdict.why)
        done.append(verdict)
    return done
