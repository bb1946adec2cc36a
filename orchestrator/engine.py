"""The Orchestrator: taskpin's public API. The Slack layer (or any other surface) calls these
methods and subscribes to `bus`; nothing here knows about Slack."""
from __future__ import annotations

import asyncio
import logging
import re
from collections.abc import Iterable
from datetime import timedelta

from .config import OnApprove, Settings
from .crashpoints import crash_point
from .errors import ActionRefused, InvalidInput, NotAllowed
from .events import EventBus, InterventionReminder, TaskCreated, TaskStateChanged, TaskUpdated
from .harness.base import Harness
from .harness.registry import build_harness
from .logs import TaskLogs
from .models import Answer, InterventionKind, InterventionStatus, InterventionView, TaskView, TransitionRecord
from .outbox import Outbox
from .runner import Outcome, TaskRunner
from .states import IllegalTransition, TaskState
from .store import Store
from .store.tables import utcnow
from .usage import UsageWriter
from .workspaces import Workspaces, branch_name

log = logging.getLogger(__name__)
S = TaskState

MAX_TITLE = 200
MAX_PROMPT = 40_000
TITLE_FROM_PROMPT = 80
# How long an inbound delivery id is remembered: Slack retries for minutes, not days.
DELIVERY_MEMORY = timedelta(hours=24)
_BRANCH_OK = re.compile(r"^[A-Za-z0-9._/-]{1,200}$")


def title_from_prompt(prompt: str) -> str:
    first = next((line.strip() for line in prompt.splitlines() if line.strip()), "")
    return first if len(first) <= TITLE_FROM_PROMPT else first[: TITLE_FROM_PROMPT - 1].rstrip() + "…"


def approved_reason(action: OnApprove, task: TaskView, repo) -> str:
    return {OnApprove.MERGE: f"approved; merged into {task.base_branch}",
            OnApprove.PUSH: f"approved; pushed to {repo.remote if repo else ''}"}.get(action, "approved")


class Orchestrator:
    """Create, dispatch, answer, follow up, cancel, approve, retry. Events on `bus`."""

    def __init__(self, settings: Settings, store: Store):
        self.settings = settings
        self.store = store
        self.bus = EventBus()
        self.outbox = Outbox(store)   # what the surface must still get out, in order
        self.usage_writer = UsageWriter(store, self.bus)   # every runner's usage, in one write per interval
        self.workspaces = Workspaces(settings.workspaces_dir)
        self.logs = TaskLogs(settings.log_dir, settings.log_retention_days)
        self._harnesses: dict[str, Harness] = {}
        self._runners: dict[int, TaskRunner] = {}
        self._runner_tasks: set[asyncio.Task] = set()
        self._kick_lock = asyncio.Lock()
        self._maintenance: asyncio.Task | None = None
        self._closing = False

    # ---- life cycle ----------------------------------------------------------------------

    @classmethod
    async def open(cls, settings: Settings) -> "Orchestrator":
        """Open the store (applying migrations); call start() to recover and schedule."""
        store = await Store.open(settings.database_url)
        return cls(settings, store)

    async def start(self) -> None:
        from .recovery import recover

        await recover(self)
        self.logs.prune()
        await self.store.prune_deliveries(utcnow() - DELIVERY_MEMORY)
        self._maintenance = asyncio.create_task(self._maintain(), name="taskpin-maintenance")
        await self.kick()

    async def close(self) -> None:
        """Stop every session without failing its task: the next start resumes or fails them."""
        self._closing = True
        if self._maintenance:
            self._maintenance.cancel()
        for runner in list(self._runners.values()):
            runner.request_stop(Outcome("shutdown"))
        if self._runner_tasks:
            await asyncio.wait(self._runner_tasks, timeout=self.settings.stop_grace_s + 5)
        await self.bus.close()
        self.logs.close()
        await self.store.close()

    async def _maintain(self) -> None:
        while True:
            await asyncio.sleep(3600)
            await asyncio.to_thread(self.logs.prune)
            try:
                await self.store.prune_deliveries(utcnow() - DELIVERY_MEMORY)
            except Exception as exc:   # the next hour tries again
                log.warning("could not prune old delivery ids: %s", exc)

    # ---- configuration the surface needs -------------------------------------------------

    def repo_names(self) -> list[str]:
        return list(self.settings.repos)

    def agent_names(self) -> list[str]:
        return list(self.settings.agents)

    def harness(self, agent: str) -> Harness:
        if agent not in self._harnesses:
            if agent not in self.settings.agents:
                raise KeyError(f"agent {agent!r}")
            self._harnesses[agent] = build_harness(agent, self.settings.agents[agent])
        return self._harnesses[agent]

    def retry_delay(self, failed_attempts: int) -> float:
        base = self.settings.retry_backoff_s * (2 ** max(0, failed_attempts - 1))
        return min(base, self.settings.retry_backoff_max_s)

    # ---- who may do what -----------------------------------------------------------------

    def may_use(self, user: str) -> bool:
        """Create and dispatch: everyone, unless TASKPIN_ALLOWED_USERS names who."""
        allowed = self.settings.allowed_users
        return not allowed or user in allowed or user in self.settings.approvers

    def may_decide(self, task: TaskView, user: str) -> bool:
        """Answer, approve, reject, cancel: the task's owner or a configured approver."""
        return user == task.owner or user in self.settings.approvers

    def _require_use(self, user: str) -> None:
        if not self.may_use(user):
            raise NotAllowed("you are not on this taskpin's list of allowed users; ask an admin to add you")

    def _require_decide(self, task: TaskView, user: str, verb: str) -> None:
        if not self.may_decide(task, user):
            raise NotAllowed(f"only the task's owner or an approver can {verb} {task.short_id}")

    # ---- reads ---------------------------------------------------------------------------

    async def get_task(self, task_id: int) -> TaskView:
        return await self.store.get_task(task_id)

    async def list_tasks(self, *, states: Iterable[TaskState] | None = None, owner: str | None = None) -> list[TaskView]:
        return await self.store.list_tasks(states=states, owner=owner)

    async def get_intervention(self, intervention_id: int) -> InterventionView | None:
        return await self.store.get_intervention(intervention_id)

    async def pending_interventions(self, task_id: int | None = None) -> list[InterventionView]:
        return await self.store.interventions(task_id, status=InterventionStatus.PENDING)

    async def history(self, task_id: int) -> list[TransitionRecord]:
        return await self.store.transitions(task_id)

    def tail_log(self, task_id: int, lines: int | None = None) -> list[str]:
        return self.logs.tail(task_id, lines or self.settings.log_tail_lines)

    @property
    def running_sessions(self) -> int:
        return len(self._runners)

    def is_running(self, task_id: int) -> bool:
        return task_id in self._runners

    def accepts_follow_up(self, task_id: int) -> bool:
        runner = self._runners.get(task_id)
        return bool(runner and runner.session and runner.session.supports_follow_up)

    async def claim_delivery(self, key: str) -> bool:
        """True the first time `key` (an inbound delivery's id) is claimed, False for a
        redelivery or retry of it: here, after a restart, or in another process on the same
        database. Remembered for DELIVERY_MEMORY."""
        return await self.store.claim_delivery(key)

    # key-value storage for the surface layer (board message location, thread ts...)
    async def kv_get(self, key: str, default=None):
        return await self.store.kv_get(key, default)

    async def kv_set(self, key: str, value) -> None:
        await self.store.kv_set(key, value)

    # ---- commands ------------------------------------------------------------------------

    async def create_task(self, *, prompt: str, owner: str, title: str | None = None, repo: str | None = None,
                          agent: str | None = None, base_branch: str | None = None) -> TaskView:
        self._require_use(owner)
        prompt = (prompt or "").strip()
        if not prompt:
            raise InvalidInput("the task needs a prompt: say what the agent should do")
        if len(prompt) > MAX_PROMPT:
            raise InvalidInput(f"the prompt is {len(prompt)} characters; the limit is {MAX_PROMPT}")
        title = " ".join((title or "").split()) or title_from_prompt(prompt)
        if len(title) > MAX_TITLE:
            raise InvalidInput(f"the title is {len(title)} characters; the limit is {MAX_TITLE}")
        try:
            repo_name, repo_cfg = self.settings.repo(repo)
        except KeyError:
            raise InvalidInput(self._unknown("repository", repo, self.repo_names())) from None
        try:
            agent_name, _ = self.settings.agent(agent)
        except KeyError:
            raise InvalidInput(self._unknown("agent", agent, self.agent_names())) from None
        base = (base_branch or "").strip() or repo_cfg.base_branch
        if not _BRANCH_OK.match(base) or ".." in base or base.startswith(("-", "/")) or base.endswith((".lock", "/")):
            raise InvalidInput(f"{base!r} is not a valid branch name")
        task = await self.store.create_task(title=title, prompt=prompt, owner=owner, repo=repo_name,
                                            agent=agent_name, base_branch=base,
                                            branch_for=lambda task_id: branch_name(task_id, title))
        self.bus.publish(TaskCreated(task))
        return task

    @staticmethod
    def _unknown(what: str, given: str | None, known: list[str]) -> str:
        if not known:
            return f"no {what} is configured yet; add one to taskpin.toml"
        if not given:
            return f"choose a {what}: {', '.join(known)} (or set a default in the configuration)"
        return f"there is no {what} named {given!r}; known: {', '.join(known)}"

    async def dispatch(self, task_id: int, *, actor: str) -> TaskView:
        """backlog -> in_progress. Two concurrent dispatches of one task start one session."""
        self._require_use(actor)
        task = await self.store.get_task(task_id)
        if task.state is not S.BACKLOG:
            raise await self._refusal(task, S.IN_PROGRESS,
                                      "it is already running" if task.state in (S.IN_PROGRESS, S.BLOCKED)
                                      else f"it is {task.state.value}")
        task = await self._transition(task, S.IN_PROGRESS, actor=actor, reason="dispatched",
                                      queued_at=utcnow(), failure_reason=None, finished_at=None)
        await self.kick()
        return await self.store.get_task(task_id)

    async def cancel(self, task_id: int, *, actor: str) -> TaskView:
        task = await self.store.get_task(task_id)
        self._require_decide(task, actor, "cancel")
        reason = f"cancelled by {actor}"
        if task.state is S.BACKLOG:
            return await self._transition(task, S.FAILED, actor=actor, reason=reason, failure_reason="cancelled")
        if task.state not in (S.IN_PROGRESS, S.BLOCKED):
            raise await self._refusal(task, S.FAILED, f"it is {task.state.value}; nothing runs")
        for _ in range(50):   # the task may be between the queue and its runner for a moment
            if task.queued and await self.store.claim_from_queue(task_id):
                return await self._transition(task, S.FAILED, actor=actor, reason=reason, failure_reason="cancelled")
            runner = self._runners.get(task_id)
            if runner:
                runner.request_stop(Outcome("cancelled", "cancelled", actor=actor))
                await asyncio.wait_for(runner.done.wait(), timeout=self.settings.stop_grace_s + 30)
                return await self._cancelled_or_refused(task_id)
            await asyncio.sleep(0.02)
            task = await self.store.get_task(task_id)
            if task.state not in (S.IN_PROGRESS, S.BLOCKED):
                return await self._cancelled_or_refused(task_id)
        # Live state with neither queue entry nor runner: a leftover; fail it so it can be retried.
        return await self._transition(task, S.FAILED, actor=actor, reason=reason, failure_reason="cancelled")

    async def _cancelled_or_refused(self, task_id: int) -> TaskView:
        """After a stop: the task, if the cancel is what ended it; else the cancel lost a race
        (the agent finished first, someone else cancelled or rejected) and the caller is told."""
        task = await self.store.get_task(task_id)
        last = await self.store.last_transition(task_id)
        if task.state is S.FAILED and last and last.reason.startswith("cancelled"):
            return task
        raise await self._refusal(task, S.FAILED)

    async def _refusal(self, task: TaskView, to_state: TaskState, detail: str = "") -> IllegalTransition:
        """The error for a decision on a task that is not (or no longer) where the decision applies,
        naming who moved it there: the winner of a race, for its loser."""
        last = await self.store.last_transition(task.id)
        return IllegalTransition(task.id, task.state, to_state, detail or f"it is {task.state.value}",
                                 by=last.actor if last else None, by_reason=last.reason if last else None)

    async def retry(self, task_id: int, *, actor: str) -> TaskView:
        """failed -> backlog, ready to be dispatched again (the branch and worktree are kept)."""
        self._require_use(actor)
        task = await self.store.get_task(task_id)
        if task.state is not S.FAILED:
            raise await self._refusal(task, S.BACKLOG)
        return await self._transition(task, S.BACKLOG, actor=actor, reason="retry", failure_reason=None,
                                      pending_prompt=None)

    async def approve(self, task_id: int, *, actor: str) -> TaskView:
        """awaiting_review -> approving -> completed. The approval takes the task first (a
        compare-and-set), then runs the repository's on-approve action: of two people deciding
        at once exactly one acts. A failed action puts the task back in review and says why."""
        task = await self.store.get_task(task_id)
        self._require_decide(task, actor, "approve")
        if task.state is not S.AWAITING_REVIEW:
            raise await self._refusal(task, S.COMPLETED)
        repo = self.settings.repos.get(task.repo)
        action = repo.on_approve if repo else OnApprove.NONE
        if action is OnApprove.MERGE:
            checkouts = await asyncio.to_thread(self.workspaces.checked_out_at, repo.path, task.base_branch)
            if checkouts:
                raise ActionRefused(
                    f"{task.base_branch} is checked out in {checkouts[0]}, and taskpin never moves a branch under "
                    f"someone's checkout. Check out another branch there (or point taskpin at a dedicated clone), "
                    f"then approve again. {task.branch} is kept.")
        task = await self._transition(task, S.APPROVING, actor=actor, reason=f"approving ({action.value})")
        crash_point("approve.claimed")
        try:
            if action is OnApprove.MERGE:
                await asyncio.to_thread(self.workspaces.merge, repo.path, task.base_branch, task.branch,
                                        f"Merge {task.branch} (taskpin {task.short_id}: {task.title})")
            elif action is OnApprove.PUSH:
                await asyncio.to_thread(self.workspaces.push, repo.path, task.branch, repo.remote)
        except Exception as exc:
            why = f"could not {action.value} {task.branch}: {exc}"
            await self._transition(task, S.AWAITING_REVIEW, actor=actor, reason=why)
            raise ActionRefused(why) from exc
        crash_point("approve.acted")
        task = await self._transition(task, S.COMPLETED, actor=actor, reason=approved_reason(action, task, repo))
        if not self.settings.keep_worktrees and repo:
            await asyncio.to_thread(self.workspaces.remove, task.id, repo.path, task.worktree)
        return task

    async def reject(self, task_id: int, *, actor: str, reason: str = "") -> TaskView:
        """awaiting_review -> failed, in one compare-and-set (nothing else happens)."""
        task = await self.store.get_task(task_id)
        self._require_decide(task, actor, "reject")
        if task.state is not S.AWAITING_REVIEW:
            raise await self._refusal(task, S.FAILED)
        why = f"rejected by {actor}" + (f": {reason.strip()}" if reason.strip() else "")
        return await self._transition(task, S.FAILED, actor=actor, reason=why, failure_reason=why)

    async def request_changes(self, task_id: int, feedback: str, *, actor: str) -> TaskView:
        """awaiting_review -> in_progress; the feedback goes to the same agent session."""
        task = await self.store.get_task(task_id)
        self._require_decide(task, actor, "request changes on")
        feedback = (feedback or "").strip()
        if not feedback:
            raise InvalidInput("say what should change: the feedback goes to the agent")
        if len(feedback) > MAX_PROMPT:
            raise InvalidInput(f"the feedback is {len(feedback)} characters; the limit is {MAX_PROMPT}")
        if task.state is not S.AWAITING_REVIEW:
            raise await self._refusal(task, S.IN_PROGRESS)
        await self._transition(task, S.IN_PROGRESS, actor=actor, reason="changes requested",
                               pending_prompt=feedback, queued_at=utcnow(), finished_at=None)
        await self.kick()
        return await self.store.get_task(task_id)

    async def answer(self, intervention_id: int, answer: Answer, *, actor: str) -> InterventionView:
        """Resolve a pending intervention and hand the answer to the agent that asked."""
        iv = await self.store.get_intervention(intervention_id)
        if iv is None:
            raise InvalidInput(f"there is no question #{intervention_id}")
        task = await self.store.get_task(iv.task_id)
        self._require_decide(task, actor, "answer for")
        if iv.status is not InterventionStatus.PENDING:
            who = f" by <{iv.answered_by}>" if iv.answered_by else ""
            raise ActionRefused(f"this question was already {iv.status.value}{who}")
        runner = self._runners.get(task.id)
        request = runner.requests.get(iv.id) if runner else None
        if runner is None or request is None or runner.session is None:
            raise ActionRefused("the agent that asked is no longer running")
        answer = self._normalize_answer(iv, answer)
        resolved = await self.store.resolve_intervention(iv.id, InterventionStatus.ANSWERED, answered_by=actor,
                                                         answer_text=answer.text or None,
                                                         answer_options=answer.option_ids)
        if resolved is None:
            raise ActionRefused("this question was answered a moment ago")
        self.logs.append(task.id, f"[taskpin] {actor} answered: {answer.text or ', '.join(answer.option_ids)}")
        # The runner moves the card back to in_progress, in order with whatever the agent does
        # next (it may ask again at once); the agent hears the answer without waiting for that.
        runner.answered(resolved, actor)
        try:
            await runner.session.answer(request.request_id, answer, request)
        except Exception as exc:
            log.warning("task #%s: the answer could not reach the agent: %s", task.id, exc)
        return resolved

    @staticmethod
    def _normalize_answer(iv: InterventionView, answer: Answer) -> Answer:
        known = {o.id for o in iv.options}
        unknown = [o for o in answer.option_ids if o not in known]
        if unknown:
            raise InvalidInput(f"{unknown[0]!r} is not one of the offered options")
        if not answer.option_ids and not answer.text.strip():
            raise InvalidInput("the answer is empty")
        if iv.kind is InterventionKind.PERMISSION and not answer.option_ids:
            deny = next((o.id for o in iv.options if o.kind == "deny"), "deny")
            return Answer(option_ids=(deny,), text=answer.text.strip())
        if len(answer.option_ids) > 1 and not iv.multi_select:
            raise InvalidInput("choose one option")
        return Answer(option_ids=tuple(answer.option_ids), text=answer.text.strip())

    async def follow_up(self, task_id: int, text: str, *, actor: str) -> bool:
        """Send a message to a running agent; False when its harness cannot take one now."""
        task = await self.store.get_task(task_id)
        self._require_decide(task, actor, "message the agent of")
        runner = self._runners.get(task_id)
        if not text.strip() or not runner or not runner.session or not runner.session.supports_follow_up:
            return False
        await runner.session.send(text.strip())
        self.logs.append(task_id, f"[taskpin] {actor} says: {text.strip()}")
        runner.poke()
        return True

    # ---- internals shared with the runner and recovery -------------------------------------

    async def _transition(self, task: TaskView, to_state: TaskState, *, actor: str, reason: str, **changes) -> TaskView:
        updated = await self.store.transition(task.id, task.state, to_state, actor=actor, reason=reason, **changes)
        self.bus.publish(TaskStateChanged(updated, task.state, to_state, actor, reason))
        return updated

    async def _remind(self, intervention_id: int) -> None:
        await self.store.mark_reminded(intervention_id)
        iv = await self.store.get_intervention(intervention_id)
        if iv and iv.status is InterventionStatus.PENDING:
            self.bus.publish(InterventionReminder(await self.store.get_task(iv.task_id), iv))

    async def kick(self) -> None:
        """Start queued tasks, oldest first, while there are free session slots."""
        if self._closing:
            return
        async with self._kick_lock:
            while len(self._runners) < self.settings.max_concurrent_sessions:
                queued = await self.store.queued_task_ids()
                started = False
                for task_id in queued:
                    if task_id in self._runners or not await self.store.claim_from_queue(task_id):
                        continue
                    self._start_runner(task_id)
                    started = True
                    break
                if not started:
                    return

    def _start_runner(self, task_id: int) -> None:
        runner = TaskRunner(self, task_id)
        self._runners[task_id] = runner
        task = asyncio.create_task(runner.run(), name=f"task-{task_id}")
        self._runner_tasks.add(task)
        task.add_done_callback(self._runner_tasks.discard)

    def _runner_done(self, runner: TaskRunner) -> None:
        if self._runners.get(runner.task_id) is runner:
            del self._runners[runner.task_id]
        if not self._closing:
            asyncio.get_running_loop().create_task(self._after_runner())

    async def _after_runner(self) -> None:
        try:
            await self.kick()
            for task in await self.store.list_tasks(states=[S.IN_PROGRESS]):   # queue positions moved up
                if task.queued:
                    self.bus.publish(TaskUpdated(task))
        except Exception:
            log.exception("scheduling after a finished session failed")
