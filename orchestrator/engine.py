"""The Orchestrator: taskpin's public API. The Slack layer (or any other surface) calls these
methods and subscribes to `bus`; nothing here knows about Slack."""
from __future__ import annotations

import asyncio
import logging
import re
from collections.abc import Iterable, Sequence
from datetime import timedelta
from pathlib import Path
from typing import Any

from . import retention
from .approval import ACTION_VERB, approved_reason, on_approve_of
from .clock import Clock
from .config import OnApprove, Settings
from .coordination.base import Coordinator, Lease, default_worker_name
from .coordination.inprocess import InProcessCoordinator
from .coordination.link import Cluster
from .crashpoints import crash_point
from .dependencies import Dependencies
from .errors import ActionRefused, InvalidInput, NotAllowed
from .events import EventBus, TaskCreated
from .harness.base import Harness
from .models import (
    Answer,
    InterventionKind,
    InterventionStatus,
    InterventionView,
    PolicyRuleView,
    TaskView,
    TransitionRecord,
)
from .outbox import Outbox
from .policies import PolicyListing
from .pull_requests import PullRequests
from .recovery import recover
from .runner import Outcome, TaskRunner
from .scheduling import Scheduling
from .states import LIVE_STATES, IllegalTransition, TaskState
from .store import Store
from .store.tables import utcnow
from .workspaces import branch_name
from .world import World

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


class Orchestrator(Scheduling):
    """Create, dispatch, answer, follow up, cancel, approve, retry. Events on `bus`."""

    def __init__(self, settings: Settings, store: Store, *, clock: Clock | None = None):
        # What runs and recovery may touch; the engine reaches the same things through it.
        self.world = World(settings, store, clock=clock)
        self.settings, self.store, self.bus = settings, store, self.world.bus
        self.workspaces, self.logs, self.clock = self.world.workspaces, self.world.logs, self.world.clock
        self.outbox = Outbox(store)   # what the surface must still get out, in order
        self.ports = self.world.ports            # a distinct port range per live task
        self.pull_requests = PullRequests(self.world)
        self.usage_writer = self.world.usage_writer
        self.dependencies = Dependencies(self.world, self.kick)   # tasks that wait for others
        # One process unless use_coordination() says otherwise (see orchestrator/coordination).
        self.coordinator: Coordinator = InProcessCoordinator(settings.worker_name or default_worker_name(), store)
        self.cluster = Cluster(self.world, self.coordinator)
        self.runs_agents = True
        self._leases: dict[int, Lease] = {}            # task id -> the lease of its run here
        self._runners: dict[int, TaskRunner] = {}
        self._runner_tasks: set[asyncio.Task[None]] = set()
        self._kick_lock = asyncio.Lock()
        self._maintenance: asyncio.Task[None] | None = None
        self._closing = False

    # ---- life cycle ----------------------------------------------------------------------

    @classmethod
    async def open(cls, settings: Settings, *, clock: Clock | None = None) -> "Orchestrator":
        """Open the store (applying migrations); call start() to recover and schedule."""
        store = await Store.open(settings.database_url)
        return cls(settings, store, clock=clock)

    def use_coordination(self, coordinator: Coordinator, *, runs_agents: bool = True,
                         bus: EventBus | None = None) -> None:
        """Before start(): take part in a deployment of several processes through `coordinator`;
        `runs_agents` False for a process that only serves Slack; `bus` replaces the event bus
        everywhere (one writing to the journal, so the process showing the board sees all)."""
        self.coordinator, self.runs_agents = coordinator, runs_agents
        self.cluster = Cluster(self.world, coordinator, runs_agents=runs_agents)
        if bus is not None:
            self.bus = self.world.use_bus(bus)

    async def start(self) -> None:
        if not self.cluster.shared:
            await recover(self.world)
        else:   # the workers settle what dead processes left (see coordination/link.py)
            await self.cluster.start(on_lost=self._lease_lost, kick=self.kick, handlers=self._handlers())
        self.pull_requests.start()
        self.dependencies.start()
        await self.dependencies.sweep()
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
        if self.cluster.shared:
            await self._hand_over()
        await self.cluster.close()
        await self.bus.close()
        self.logs.close()
        await self.store.close()

    async def _maintain(self) -> None:
        while True:
            await asyncio.sleep(3600)   # housekeeping, not a deadline: real time
            await asyncio.to_thread(self.logs.prune)
            try:
                await self.store.prune_deliveries(utcnow() - DELIVERY_MEMORY)
            except Exception as exc:   # the next hour tries again
                log.warning("could not prune old delivery ids: %s", exc)
            try:
                await retention.collect(self.world)   # old worktrees of finished tasks
            except Exception as exc:
                log.warning("could not remove old worktrees: %s", exc)

    async def collect_worktrees(self, *, dry_run: bool = False) -> list[retention.Verdict]:
        """Remove (or, dry, list) the worktrees of tasks finished longer ago than the retention
        allows, keeping any that hold work found nowhere else (`taskpin gc`)."""
        return await retention.collect(self.world, dry_run=dry_run)

    # ---- configuration the surface needs -------------------------------------------------

    def repo_names(self) -> list[str]:
        return list(self.settings.repos)

    def agent_names(self) -> list[str]:
        return list(self.settings.agents)

    def harness(self, agent: str) -> Harness:
        return self.world.harness(agent)

    def retry_delay(self, failed_attempts: int) -> float:
        return self.world.retry_delay(failed_attempts)

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
        """An open question is read from the run that asked it (no database round trip)."""
        runner = self._runner_asking(intervention_id)
        question = runner.question(intervention_id) if runner else None
        return question or await self.store.get_intervention(intervention_id)

    async def pending_interventions(self, task_id: int | None = None) -> list[InterventionView]:
        if (runner := self._runners.get(task_id or 0)) is not None:   # its run is here: from memory
            return runner.open_questions()
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
        return bool(runner and runner.accepts_follow_up)

    async def health(self) -> dict[str, object]:
        """What a health check reports about the core: whether its database answers, and how
        many agent sessions run. `ok` is False when the database cannot be reached."""
        try:
            await self.store.count_tasks()
        except Exception as exc:
            log.warning("health check: the database is unreachable: %s", exc)
            return {"ok": False, "database": "unreachable", "running_sessions": self.running_sessions}
        return {"ok": True, "database": "ok", "running_sessions": self.running_sessions}

    async def claim_delivery(self, key: str) -> bool:
        """True the first time `key` (an inbound delivery's id) is claimed, False for a redelivery or
        retry of it (here, after a restart, in another process). Remembered for DELIVERY_MEMORY."""
        return await self.store.claim_delivery(key)

    # key-value storage for the surface layer (board message location, thread ts...)
    async def kv_get(self, key: str, default: Any = None) -> Any:
        return await self.store.kv_get(key, default)

    async def kv_set(self, key: str, value: Any) -> None:
        await self.store.kv_set(key, value)

    async def kv_items(self, prefix: str) -> dict[str, Any]:
        """Every surface value whose key starts with `prefix`."""
        return await self.store.kv_items(prefix)

    # ---- commands ------------------------------------------------------------------------

    async def create_task(self, *, prompt: str, owner: str, title: str | None = None, repo: str | None = None,
                          agent: str | None = None, base_branch: str | None = None,
                          depends_on: Sequence[int] | None = None) -> TaskView:
        self._require_use(owner)
        prompt = (prompt or "").strip()
        if not prompt:
            raise InvalidInput("the task needs a prompt: say what the agent should do", field="prompt")
        if len(prompt) > MAX_PROMPT:
            raise InvalidInput(f"the prompt is {len(prompt)} characters; the limit is {MAX_PROMPT}", field="prompt")
        title = " ".join((title or "").split()) or title_from_prompt(prompt)
        if len(title) > MAX_TITLE:
            raise InvalidInput(f"the title is {len(title)} characters; the limit is {MAX_TITLE}", field="title")
        try:
            repo_name, repo_cfg = self.settings.repo(repo)
        except KeyError:
            raise InvalidInput(self._unknown("repository", repo, self.repo_names()), field="repo") from None
        try:
            agent_name, _ = self.settings.agent(agent)
        except KeyError:
            raise InvalidInput(self._unknown("agent", agent, self.agent_names()), field="agent") from None
        base = (base_branch or "").strip() or repo_cfg.base_branch
        if not _BRANCH_OK.match(base) or ".." in base or base.startswith(("-", "/")) or base.endswith((".lock", "/")):
            raise InvalidInput(f"{base!r} is not a valid branch name", field="base_branch")
        waits = await self.dependencies.validate(depends_on)
        task = await self.store.create_task(title=title, prompt=prompt, owner=owner, repo=repo_name,
                                            agent=agent_name, base_branch=base, depends_on=waits,
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

    async def dispatch(self, task_id: int, *, actor: str, anyway: bool = False) -> TaskView:
        """backlog -> queued; a free session slot then starts it. Two concurrent dispatches of
        one task queue it once. A task whose dependencies have not all completed goes to
        waiting instead; `anyway` queues a waiting task now (orchestrator/dependencies.py)."""
        self._require_use(actor)
        task = await self.store.get_task(task_id)
        if (task.state is S.BACKLOG and task.depends_on) or (task.state is S.WAITING and anyway):
            await self.dependencies.dispatch(task, actor=actor)
            await self.kick()
            return await self.store.get_task(task_id)
        if task.state is not S.BACKLOG:
            raise await self._refusal(task, S.QUEUED,
                                      "it is already running" if task.state in (S.QUEUED, *LIVE_STATES)
                                      else f"it is {task.state.value}")
        await self.world.transition(task, S.QUEUED, actor=actor, reason="dispatched",
                                    queued_at=utcnow(), failure_reason=None, finished_at=None)
        await self.kick()
        return await self.store.get_task(task_id)

    async def cancel(self, task_id: int, *, actor: str) -> TaskView:
        """backlog, waiting or queued -> failed at once; a running task's agent is stopped first."""
        task = await self.store.get_task(task_id)
        self._require_decide(task, actor, "cancel")
        reason = f"cancelled by {actor}"
        while task.state in (S.BACKLOG, S.WAITING, S.QUEUED):
            try:
                return await self.world.transition(task, S.FAILED, actor=actor, reason=reason,
                                                   failure_reason="cancelled")
            except IllegalTransition:   # it moved on meanwhile (a slot took it): look again
                task = await self.store.get_task(task_id)
        if task.state not in LIVE_STATES:
            raise await self._refusal(task, S.FAILED, f"it is {task.state.value}; nothing runs")
        return await self._cancel_running(task, actor)

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
        return await self.world.transition(task, S.BACKLOG, actor=actor, reason="retry", failure_reason=None,
                                           pending_prompt=None)

    async def approve(self, task_id: int, *, actor: str) -> TaskView:
        """awaiting_review -> approving -> completed. The approval takes the task first (a
        compare-and-set), then runs the repository's on-approve action: of two people deciding
        at once exactly one acts. A failed action puts the task back in review and says why."""
        task = await self.store.get_task(task_id)
        self._require_decide(task, actor, "approve")
        if task.state is not S.AWAITING_REVIEW:
            raise await self._refusal(task, S.COMPLETED)
        if not self.runs_agents:
            return await self._approve_in_worker(task, actor)
        lease = await self._hold_for_approval(task_id)
        try:
            return await self._as_holder(lease, self._approve_here(task, actor))
        finally:
            if lease is not None:
                await self.cluster.release(lease)

    async def _approve_here(self, task: TaskView, actor: str) -> TaskView:
        repo = self.settings.repos.get(task.repo)
        action = on_approve_of(repo)
        if repo is None:   # no longer configured: nothing to act on but the approval itself
            return await self._approved_without_action(task, actor)
        if action is OnApprove.MERGE:
            checkouts = await asyncio.to_thread(self.workspaces.checked_out_at, repo.path, task.base_branch)
            if checkouts:
                raise ActionRefused(
                    f"{task.base_branch} is checked out in {checkouts[0]}, and taskpin never moves a branch under "
                    f"someone's checkout. Check out another branch there (or point taskpin at a dedicated clone), "
                    f"then approve again. {task.branch} is kept.")
        if action is OnApprove.PULL_REQUEST:
            self.pull_requests.precheck(task, repo)
        task = await self.world.transition(task, S.APPROVING, actor=actor, reason=f"approving ({action.value})")
        crash_point("approve.claimed")
        try:
            if action is OnApprove.MERGE:
                await asyncio.to_thread(self.workspaces.merge, repo.path, task.base_branch, task.branch,
                                        f"Merge {task.branch} (taskpin {task.short_id}: {task.title})")
            elif action is OnApprove.PUSH:
                await asyncio.to_thread(self.workspaces.push, repo.path, task.branch, repo.remote)
            elif action is OnApprove.PULL_REQUEST:
                await self.pull_requests.open(task, repo)
        except Exception as exc:
            why = f"could not {ACTION_VERB.get(action, action.value)} {task.branch}: {exc}"
            await self.world.transition(task, S.AWAITING_REVIEW, actor=actor, reason=why)
            raise ActionRefused(why) from exc
        crash_point("approve.acted")
        task = await self.world.transition(task, S.COMPLETED, actor=actor, reason=approved_reason(action, task, repo))
        if not self.settings.keep_worktrees:
            await asyncio.to_thread(self.workspaces.remove, task.id, repo.path,
                                    Path(task.worktree) if task.worktree else None)
        return task

    async def _approved_without_action(self, task: TaskView, actor: str) -> TaskView:
        task = await self.world.transition(task, S.APPROVING, actor=actor, reason="approving (none)")
        return await self.world.transition(task, S.COMPLETED, actor=actor,
                                           reason=approved_reason(OnApprove.NONE, task, None))

    async def reject(self, task_id: int, *, actor: str, reason: str = "") -> TaskView:
        """awaiting_review -> failed, in one compare-and-set (nothing else happens)."""
        task = await self.store.get_task(task_id)
        self._require_decide(task, actor, "reject")
        if task.state is not S.AWAITING_REVIEW:
            raise await self._refusal(task, S.FAILED)
        why = f"rejected by {actor}" + (f": {reason.strip()}" if reason.strip() else "")
        return await self.world.transition(task, S.FAILED, actor=actor, reason=why, failure_reason=why)

    async def request_changes(self, task_id: int, feedback: str, *, actor: str) -> TaskView:
        """awaiting_review -> queued; the feedback goes to the same agent session when it runs."""
        task = await self.store.get_task(task_id)
        self._require_decide(task, actor, "request changes on")
        feedback = (feedback or "").strip()
        if not feedback:
            raise InvalidInput("say what should change: the feedback goes to the agent", field="feedback")
        if len(feedback) > MAX_PROMPT:
            raise InvalidInput(f"the feedback is {len(feedback)} characters; the limit is {MAX_PROMPT}",
                               field="feedback")
        if task.state is not S.AWAITING_REVIEW:
            raise await self._refusal(task, S.QUEUED)
        await self.world.transition(task, S.QUEUED, actor=actor, reason="changes requested",
                                    pending_prompt=feedback, queued_at=utcnow(), finished_at=None)
        await self.kick()
        return await self.store.get_task(task_id)

    async def answer(self, intervention_id: int, answer: Answer, *, actor: str) -> InterventionView:
        """Hand an answer to the agent that asked; the question is shown answered once the agent
        has it. ActionRefused (the question still open) when the agent could not be given it."""
        runner = self._runner_asking(intervention_id)
        question = runner.question(intervention_id) if runner else None
        if runner is None or question is None:
            answered = await self._answer_elsewhere(intervention_id, answer, actor)
            if answered is not None:
                return answered
            raise await self._why_unanswerable(intervention_id, actor)
        self._require_decide(runner.task, actor, "answer for")
        given = self._normalize_answer(question, answer)
        return await self._as_holder(self._leases.get(runner.task_id), runner.answer(question, given, actor))

    async def always_allow(self, intervention_id: int, *, actor: str) -> tuple[InterventionView, PolicyRuleView]:
        """Allow a permission request and add a rule allowing exactly it from now on: for the
        repository when `actor` is an approver, else for the task (orchestrator/policies.py)."""
        runner = self._runner_asking(intervention_id)
        question = runner.question(intervention_id) if runner else None
        if runner is None or question is None:
            raise await self._why_unanswerable(intervention_id, actor)
        self._require_decide(runner.task, actor, "answer for")
        return await self.world.policies.always_allow(runner, question, actor,
                                                      approver=actor in self.settings.approvers)

    async def policy_rules(self) -> PolicyListing:
        """taskpin.toml's rules by repository and agent, and the rules added in Slack."""
        return await self.world.policies.listing()

    async def remove_policy_rule(self, rule_id: int, *, actor: str) -> PolicyRuleView:
        """Remove a rule added in Slack: an approver, or the owner of the task an owner's rule is for."""
        return await self.world.policies.remove(rule_id, actor)

    def _runner_asking(self, intervention_id: int) -> TaskRunner | None:
        return next((r for r in self._runners.values() if r.question(intervention_id) is not None), None)

    async def _why_unanswerable(self, intervention_id: int, actor: str) -> Exception:
        iv = await self.store.get_intervention(intervention_id)
        if iv is None:
            return InvalidInput(f"there is no question #{intervention_id}", field="answer")
        task = await self.store.get_task(iv.task_id)
        if not self.may_decide(task, actor):
            return NotAllowed(f"only the task's owner or an approver can answer for {task.short_id}")
        if iv.status is not InterventionStatus.PENDING:
            who = f" by <{iv.answered_by}>" if iv.answered_by else ""
            return ActionRefused(f"this question was already {iv.status.value}{who}")
        return ActionRefused("the agent that asked is no longer running")

    @staticmethod
    def _normalize_answer(iv: InterventionView, answer: Answer) -> Answer:
        known = {o.id for o in iv.options}
        unknown = [o for o in answer.option_ids if o not in known]
        if unknown:
            raise InvalidInput(f"{unknown[0]!r} is not one of the offered options", field="answer")
        if not answer.option_ids and not answer.text.strip():
            raise InvalidInput("the answer is empty", field="answer")
        if iv.kind is InterventionKind.PERMISSION and not answer.option_ids:
            deny = next((o.id for o in iv.options if o.kind == "deny"), "deny")
            return Answer(option_ids=(deny,), text=answer.text.strip())
        if len(answer.option_ids) > 1 and not iv.multi_select:
            raise InvalidInput("choose one option", field="answer")
        return Answer(option_ids=tuple(answer.option_ids), text=answer.text.strip())

    async def follow_up(self, task_id: int, text: str, *, actor: str) -> bool:
        """Send a message to a running agent; False when its harness cannot take one now."""
        runner = self._runners.get(task_id)
        task = runner.task if runner else await self.store.get_task(task_id)
        self._require_decide(task, actor, "message the agent of")
        if not text.strip():
            return False
        if runner is None:
            return await self._follow_up_elsewhere(task, text.strip(), actor)
        return await runner.follow_up(text.strip(), actor)
