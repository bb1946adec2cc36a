"""Approval policies at work: the rules that apply to a task (taskpin.toml's, then those added
in Slack), permission requests settled by them without a human, "Always allow this", and the
rules listed and removed by `/task policy`. The matching itself is orchestrator.policy (pure)."""
from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import Protocol

from .config import Settings
from .errors import ActionRefused, InvalidInput, NotAllowed
from .events import EventBus, PolicyDecided, TaskNotice
from .harness.base import AgentSession, InterventionRequest
from .logs import TaskLogs
from .models import Answer, InterventionKind, InterventionView, PolicyRuleView, TaskView
from .policy import (
    Decision,
    Effect,
    Rule,
    decide,
    exact_target,
    option_for,
    parse_rule,
    parse_rules,
    parse_target,
)
from .store import Store
from .store import policy_rules as stored

log = logging.getLogger(__name__)
POLICY_ACTOR = "policy"   # answered_by of a request a rule settled


class AskingRun(Protocol):
    """The run whose agent asked (a TaskRunner): its task, and how an answer reaches the agent."""

    task: TaskView

    async def answer(self, question: InterventionView, answer: Answer, actor: str) -> InterventionView: ...


@dataclass(frozen=True)
class PolicyListing:
    configured: list[tuple[str, list[Rule]]]   # ("repos.api", its rules), ("agents.claude", ...)
    added: list[PolicyRuleView]


def added_rule(view: PolicyRuleView) -> Rule:
    tool, pattern = parse_target(view.target)
    where = f"rule {view.id}, " + ("this task" if view.task_id else f"repository {view.repo}")
    return Rule(Effect(view.effect), tool, pattern, where, view.by_approver, view.id)


class Policies:
    def __init__(self, settings: Settings, store: Store, logs: TaskLogs, bus: EventBus):
        self.settings, self.store, self.logs, self.bus = settings, store, logs, bus

    def configured(self, repo: str, agent: str) -> list[Rule]:
        """taskpin.toml's rules for a task: its repository's, then its agent's."""
        rules: list[Rule] = []
        if repo in self.settings.repos:
            rules += parse_rules(self.settings.repos[repo].policy, source=f"repos.{repo}")
        if agent in self.settings.agents:
            rules += parse_rules(self.settings.agents[agent].policy, source=f"agents.{agent}")
        return rules

    async def rules_for(self, task: TaskView) -> list[Rule]:
        """In the order they are read: taskpin.toml's, the repository's added ones, the task's."""
        return [rule for layer in await self._layers(task) for rule in layer]

    async def _layers(self, task: TaskView) -> tuple[list[Rule], list[Rule], list[Rule]]:
        added = await stored.active_rules(self.store, repo=task.repo, task_id=task.id)
        return (self.configured(task.repo, task.agent), [added_rule(v) for v in added if v.task_id is None],
                [added_rule(v) for v in added if v.task_id is not None])

    async def settle(self, task_id: int, request: InterventionRequest, session: AgentSession, *,
                     attempt: int) -> bool:
        """Answer a permission request by rule when one allows or denies it; False: ask a human."""
        if request.kind is not InterventionKind.PERMISSION:
            return False
        task = await self.store.get_task(task_id)   # with its worktree: paths in it match relative too
        decision = decide(await self.rules_for(task), request.tool, request.detail, workdir=task.worktree)
        if not decision.automatic:
            return False
        option = option_for(decision.effect, request.options)
        if option is None:
            self.logs.append(task.id, f"[taskpin] {decision.reason()}, but the agent offered no option to "
                                      f"{decision.effect.value} it: asking a human")
            return False
        reason = decision.reason()
        answer = Answer((option,), "" if decision.effect is Effect.ALLOW else reason)
        try:
            await session.answer(request.request_id, answer, request)
        except Exception as exc:
            self.logs.append(task.id, f"[taskpin] {reason}, but the agent could not be told ({exc}): asking a human")
            return False
        await self.record(task, request, decision, option, attempt)
        return True

    async def record(self, task: TaskView, request: InterventionRequest, decision: Decision, option: str,
                     attempt: int) -> None:
        """The audit: the task log, a stored (answered) request, and an event for the thread's summary."""
        reason = decision.reason()
        self.logs.append(task.id, f"[taskpin] policy: {request.tool or 'a tool'} {request.detail or ''}".rstrip()
                                  + f": {reason}")
        iv = await self.store.add_intervention(
            task_id=task.id, attempt=attempt, request_id=request.request_id, kind=request.kind,
            prompt=request.prompt, options=request.options, tool=request.tool, detail=request.detail,
            multi_select=request.multi_select, answered_by=POLICY_ACTOR, answer_text=reason,
            answer_options=(option,))
        rule = decision.rule
        self.bus.publish(PolicyDecided(task, iv, decision.effect.value, reason, rule.target if rule else "",
                                       rule.source if rule else ""))

    # ---- Always allow this ---------------------------------------------------------------

    async def always_allow(self, runner: AskingRun, question: InterventionView, actor: str, *,
                           approver: bool) -> tuple[InterventionView, PolicyRuleView]:
        """Allow this request and, from now on, exactly this request: for the whole repository
        when an approver says so, else for the task. Refused (nothing answered) when the rule
        would not decide it."""
        task = runner.task
        if question.kind is not InterventionKind.PERMISSION:
            raise InvalidInput("only a permission request can be always allowed", field="answer")
        if not question.tool:
            raise ActionRefused("the agent did not say which tool this is, so no rule can name it; "
                                "answer with the buttons instead")
        option = option_for(Effect.ALLOW, question.options)
        if option is None:
            raise ActionRefused("the agent offered no option that allows this")
        target = exact_target(question.tool, (question.detail or "").strip())
        rule = parse_rule(f"allow {target}", source="the new rule", by_approver=approver)
        configured, for_repo, for_task = await self._layers(task)
        ordered = ([*configured, *for_repo, rule, *for_task] if approver
                   else [*configured, *for_repo, *for_task, rule])
        verdict = decide(ordered, question.tool, question.detail, workdir=task.worktree)
        if verdict.rule is not rule:
            raise ActionRefused(_would_not_decide(verdict))
        answered = await runner.answer(question, Answer((option,)), actor)
        view = await stored.add_rule(self.store, repo=task.repo, task_id=None if approver else task.id,
                                     effect=Effect.ALLOW.value, target=target, by_approver=approver,
                                     added_by=actor, intervention_id=question.id)
        scope = f"every task of repository {task.repo}" if approver else "this task"
        self.logs.append(task.id, f"[taskpin] {actor} added policy rule {view.id}: {view.text} for {scope}")
        self.bus.publish(TaskNotice(task, f"policy rule {view.id} added: {view.text} for {scope} "
                                          f"(/task policy lists the rules; /task policy remove {view.id} removes it)"))
        return answered, view

    # ---- /task policy ----------------------------------------------------------------------

    async def listing(self) -> PolicyListing:
        configured = [(f"repos.{name}", parse_rules(repo.policy, source=f"repos.{name}"))
                      for name, repo in self.settings.repos.items() if repo.policy]
        configured += [(f"agents.{name}", parse_rules(agent.policy, source=f"agents.{name}"))
                       for name, agent in self.settings.agents.items() if agent.policy]
        return PolicyListing(configured, await stored.active_rules(self.store))

    async def remove(self, rule_id: int, actor: str) -> PolicyRuleView:
        """An added rule, by an approver, or by the owner of the task an owner's rule is for."""
        view = await stored.get_rule(self.store, rule_id)
        if view is None or view.removed_at is not None:
            gone = " any more" if view else ""
            raise InvalidInput(f"there is no policy rule {rule_id}{gone}; /task policy lists them", field="rule")
        task = await self.store.find_task(view.task_id) if view.task_id else None
        if actor not in self.settings.approvers and (view.by_approver or task is None or actor != task.owner):
            who = "an approver" if view.by_approver else "an approver or the task's owner"
            raise NotAllowed(f"only {who} can remove policy rule {rule_id}")
        removed = await stored.remove_rule(self.store, rule_id, removed_by=actor)
        if removed is None:
            raise InvalidInput(f"policy rule {rule_id} was removed a moment ago", field="rule")
        log.info("policy rule %s (%s) removed by %s", rule_id, removed.text, actor)
        return removed


def _would_not_decide(verdict: Decision) -> str:
    if verdict.rule is not None:
        where = f" ({verdict.rule.source})" if verdict.rule.source else ""
        return (f"the rule `{verdict.rule}`{where} decides this first, so a new rule would change nothing; "
                "answer with the buttons (an approver can change taskpin.toml)")
    return ("taskpin never allows this automatically: it chains commands, substitutes or redirects to a file; "
            "answer with the buttons")
