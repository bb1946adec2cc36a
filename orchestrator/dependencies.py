"""Tasks that wait for others: `depends_on` checked at creation (known ids, no cycles), a
dispatch before the dependencies completed parks the task in `waiting`, and the completion of
the last one queues it by itself: on the dependency's branch when that was kept as a branch
(on_approve none, push or pull_request: the work is on that branch only), else on its own base
branch, which a merge has just updated. A dependency that fails (or is rejected or cancelled)
leaves its dependents waiting and tells their threads (DependencyFailed), where Dispatch
anyway or Cancel decides."""
from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable, Iterable, Mapping, Sequence

from .approval import on_approve_of
from .config import OnApprove
from .errors import InvalidInput, TaskNotFound
from .events import DependencyFailed, TaskStateChanged
from .models import TaskView
from .states import IllegalTransition, TaskState
from .store.tables import utcnow
from .world import World

log = logging.getLogger(__name__)
S = TaskState
MAX_DEPENDENCIES = 50
KEPT_AS_BRANCH = (OnApprove.NONE, OnApprove.PUSH, OnApprove.PULL_REQUEST)


def find_cycle(edges: Mapping[int, Iterable[int]], start: int) -> list[int] | None:
    """A path start -> ... -> start along `edges` (task -> the tasks it waits for), or None."""
    stack, seen = [(start, [start])], {start}
    while stack:
        node, path = stack.pop()
        for nxt in edges.get(node, ()):
            if nxt == start:
                return [*path, start]
            if nxt not in seen:
                seen.add(nxt)
                stack.append((nxt, [*path, nxt]))
    return None


def waits_for(task: TaskView, tasks: Mapping[int, TaskView]) -> list[int]:
    """The dependencies of `task` that have not completed (a deleted one counts as done)."""
    return [d for d in task.depends_on if d in tasks and tasks[d].state is not S.COMPLETED]


class Dependencies:
    def __init__(self, world: World, kick: Callable[[], Awaitable[None]]):
        self.world, self.store, self.kick = world, world.store, kick

    def start(self) -> None:
        self.world.bus.subscribe(self._on_event, name="dependencies")

    async def validate(self, depends_on: Sequence[object] | None, *, task_id: int | None = None) -> tuple[int, ...]:
        """The ids, deduplicated; InvalidInput(field="depends_on") for an unknown id or a cycle."""
        ids: list[int] = []
        for raw in depends_on or ():
            if isinstance(raw, bool) or not isinstance(raw, int) or raw <= 0:
                raise InvalidInput(f"{raw!r} is not a task id: write them like #12", field="depends_on")
            if raw not in ids:
                ids.append(raw)
        if len(ids) > MAX_DEPENDENCIES:
            raise InvalidInput(f"a task can wait for at most {MAX_DEPENDENCIES} others", field="depends_on")
        if task_id is not None and task_id in ids:
            raise InvalidInput(f"#{task_id} cannot wait for itself", field="depends_on")
        tasks = {t.id: t for t in await self.store.list_tasks()}
        unknown = [i for i in ids if i not in tasks]
        if unknown:
            raise InvalidInput(f"there is no task {', '.join('#' + str(i) for i in unknown)} to wait for; "
                               "/task list shows yours", field="depends_on")
        if task_id is not None:
            edges = {t.id: t.depends_on for t in tasks.values()} | {task_id: tuple(ids)}
            cycle = find_cycle(edges, task_id)
            if cycle:
                raise InvalidInput(f"{' → '.join('#' + str(i) for i in cycle)} would wait for each other forever",
                                   field="depends_on")
        return tuple(ids)

    async def _tasks(self, ids: Iterable[int]) -> dict[int, TaskView]:
        found = {}
        for task_id in ids:
            try:
                found[task_id] = await self.store.get_task(task_id)
            except TaskNotFound:
                continue
        return found

    async def dispatch(self, task: TaskView, *, actor: str) -> TaskView:
        """A task with dependencies: backlog -> waiting while one has not completed (telling the
        thread about those that failed), else -> queued on the branch they left; waiting ->
        queued at once (Dispatch anyway)."""
        deps = await self._tasks(task.depends_on)
        pending = waits_for(task, deps)
        if task.state is S.BACKLOG and pending:
            task = await self.world.transition(task, S.WAITING, actor=actor, failure_reason=None, finished_at=None,
                                               reason="waits for " + ", ".join(f"#{d}" for d in pending))
            for dep in (deps[d] for d in pending if deps[d].state is S.FAILED):
                self.world.publish(DependencyFailed(task, dep))
            return task
        why = "dispatched anyway" if task.state is S.WAITING else "dispatched"
        return await self._queue(task, deps, actor=actor, reason=why)

    async def _queue(self, task: TaskView, deps: Mapping[int, TaskView], *, actor: str, reason: str) -> TaskView:
        base = self.base_for(task, deps.values())
        changes = {"base_branch": base} if base and base != task.base_branch else {}
        if changes:
            reason += f", on {base}"
            self.world.logs.append(task.id, f"[taskpin] starts from {base}, the branch its dependency left")
        return await self.world.transition(task, S.QUEUED, actor=actor, reason=reason, queued_at=utcnow(),
                                           failure_reason=None, finished_at=None, **changes)

    def base_for(self, task: TaskView, deps: Iterable[TaskView]) -> str | None:
        """The branch of the latest completed dependency of the same repository whose work was
        kept on its branch (one with changes first); None: the task's own base branch (merged
        work is there). Only one branch can be the base: several kept branches are not merged."""
        kept = [d for d in deps if d.state is S.COMPLETED and d.repo == task.repo and d.branch
                and on_approve_of(self.world.settings.repos.get(d.repo)) in KEPT_AS_BRANCH]
        changed = [d for d in kept if d.diff and d.diff.files_changed] or kept   # one that changed something
        if not changed:
            return None
        return max(changed, key=lambda d: (d.finished_at or d.state_changed_at, d.id)).branch

    async def release(self, task: TaskView) -> TaskView | None:
        """waiting -> queued when every dependency has completed; None while one has not."""
        deps = await self._tasks(task.depends_on)
        if waits_for(task, deps):
            return None
        try:
            queued = await self._queue(task, deps, actor="taskpin", reason="its dependencies completed")
        except IllegalTransition:   # cancelled or dispatched anyway meanwhile
            return None
        await self.kick()
        return queued

    async def sweep(self) -> None:
        """At start: release what completions missed while taskpin was down (or elsewhere)."""
        for task in await self.store.list_tasks(states=[S.WAITING]):
            await self.release(task)

    async def _on_event(self, event: object) -> None:
        """A task completed or failed (rejected, cancelled too): its waiting dependents go on or hear it."""
        if not isinstance(event, TaskStateChanged) or event.to_state not in (S.COMPLETED, S.FAILED):
            return
        done = event.task
        for waiting in await self.store.list_tasks(states=[S.WAITING]):
            if done.id not in waiting.depends_on:
                continue
            if event.to_state is S.FAILED:
                self.world.logs.append(waiting.id, f"[taskpin] #{done.id}, which this task waits for, failed: "
                                                   f"{done.failure_reason or 'no reason recorded'}")
                self.world.publish(DependencyFailed(waiting, done))
                continue
            try:
                await self.release(waiting)
            except Exception:
                log.exception("task #%s: could not queue it after #%s completed", waiting.id, done.id)
