"""Approval policies in the core, with the scripted command agent: requests a rule allows or
denies never reach a human, the agent hears why, every decision is audited, Always allow
writes a removable rule, and an owner cannot loosen what an approver set."""
from __future__ import annotations

import json

import pytest

from orchestrator import (
    ActionRefused,
    InterventionStatus,
    NotAllowed,
    PolicyDecided,
    TaskState,
)
from orchestrator.errors import InvalidInput

from .helpers import Recorder, make_settings, scripted, started, wait_state, wait_until

S = TaskState
OWNER, APPROVER, OTHER = "U_OWNER", "U_APPROVER", "U_OTHER"
RULES = ["allow Read", "allow Bash(pytest *)", "deny Bash(rm -rf *)", "ask Bash(git *)"]


def permission(rid: str, tool: str, detail: str) -> dict:
    return {"ask": {"id": rid, "kind": "permission", "prompt": f"May I use {tool}?", "tool": tool, "detail": detail}}


def answers(log) -> list[dict]:
    if not log.exists():
        return []
    return [line for line in map(json.loads, log.read_text().splitlines()) if line.get("type") == "answer"]


async def core_with(tmp_path, git_repo, steps, *, repo_policy=RULES, agent_policy=(), db_url=None):
    log = tmp_path / "stdin.log"
    agent = scripted(steps, env={"SCRIPTED_AGENT_LOG": str(log)}, policy=list(agent_policy))
    settings = make_settings(tmp_path, git_repo, {"bot": agent}, approvers=[APPROVER], db_url=db_url)
    settings.repos["app"].policy = list(repo_policy)
    return await started(settings), log


async def test_allowed_and_denied_requests_never_reach_a_human_and_the_agent_hears_why(tmp_path, git_repo, db_url):
    steps = [permission("p1", "Bash", "pytest -q"), permission("p2", "Read", "README.md"),
             permission("p3", "Bash", "rm -rf build"), permission("p4", "Bash", "curl https://example.com"),
             {"finish": "done"}]
    core, log = await core_with(tmp_path, git_repo, steps, db_url=db_url)
    recorder = Recorder(core)
    try:
        task = await core.create_task(prompt="clean up", owner=OWNER)
        await core.dispatch(task.id, actor=OWNER)
        await wait_state(core, task.id, S.BLOCKED)   # only the request no rule covers
        [asked] = await core.pending_interventions(task.id)
        assert (asked.tool, asked.detail) == ("Bash", "curl https://example.com")
        assert [(a["id"], a["option"], a["text"]) for a in answers(log)] == [
            ("p1", "allow", ""), ("p2", "allow", ""),
            ("p3", "deny", "denied by taskpin policy rule `Bash(rm -rf *)` (repos.app)")]
        moves = [(h.from_state, h.to_state) for h in await core.history(task.id)]
        assert moves.count((S.IN_PROGRESS, S.BLOCKED)) == 1

        decided = [iv for iv in await core.store.interventions(task.id) if iv.answered_by == "policy"]
        assert [(iv.detail, iv.status, iv.answer_options) for iv in decided] == [
            ("pytest -q", InterventionStatus.ANSWERED, ("allow",)), ("README.md", InterventionStatus.ANSWERED, ("allow",)),
            ("rm -rf build", InterventionStatus.ANSWERED, ("deny",))]
        log_text = "\n".join(core.tail_log(task.id, 100))
        assert "policy: Bash rm -rf build: denied by taskpin policy rule `Bash(rm -rf *)`" in log_text
        assert "allowed by taskpin policy rule `Read` (repos.app)" in log_text
        await wait_until(lambda: len(recorder.of(PolicyDecided)) == 3, what="three policy events")
        assert [e.effect for e in recorder.of(PolicyDecided)] == ["allow", "allow", "deny"]
    finally:
        await core.close()


async def test_an_agents_rules_apply_after_the_repositorys(tmp_path, git_repo):
    steps = [permission("p1", "WebFetch", "https://docs.python.org/3/"), permission("p2", "Bash", "rm -rf /"),
             {"finish": "done"}]
    core, log = await core_with(tmp_path, git_repo, steps,
                                agent_policy=["allow WebFetch(https://docs.python.org/*)", "allow Bash(*)"])
    try:
        task = await core.create_task(prompt="read the docs", owner=OWNER)
        await core.dispatch(task.id, actor=OWNER)
        await wait_state(core, task.id, S.AWAITING_REVIEW)
        assert [(a["id"], a["option"]) for a in answers(log)] == [("p1", "allow"), ("p2", "deny")]
    finally:
        await core.close()


async def test_always_allow_by_an_approver_covers_the_repository_and_is_removable(tmp_path, git_repo):
    steps = [permission("p1", "Bash", "make lint"), {"finish": "done"}]
    core, log = await core_with(tmp_path, git_repo, steps)
    try:
        first = await core.create_task(prompt="lint", owner=OWNER)
        await core.dispatch(first.id, actor=OWNER)
        await wait_state(core, first.id, S.BLOCKED)
        [iv] = await core.pending_interventions(first.id)
        with pytest.raises(NotAllowed):
            await core.always_allow(iv.id, actor=OTHER)
        answered, rule = await core.always_allow(iv.id, actor=APPROVER)
        assert answered.answered_by == APPROVER and answered.answer_options == ("allow",)
        assert (rule.text, rule.task_id, rule.by_approver, rule.intervention_id) == \
            ("allow Bash(make lint)", None, True, iv.id)
        await wait_state(core, first.id, S.AWAITING_REVIEW)

        second = await core.create_task(prompt="lint again", owner=OTHER)   # another owner, same repository
        await core.dispatch(second.id, actor=OTHER)
        await wait_state(core, second.id, S.AWAITING_REVIEW)
        assert [a["option"] for a in answers(log)] == ["allow", "allow"]
        assert [r.text for r in (await core.policy_rules()).added] == ["allow Bash(make lint)"]

        with pytest.raises(NotAllowed, match="only an approver"):
            await core.remove_policy_rule(rule.id, actor=OWNER)
        removed = await core.remove_policy_rule(rule.id, actor=APPROVER)
        assert removed.removed_by == APPROVER and (await core.policy_rules()).added == []
        with pytest.raises(InvalidInput, match=f"no policy rule {rule.id} any more"):
            await core.remove_policy_rule(rule.id, actor=APPROVER)

        third = await core.create_task(prompt="lint once more", owner=OWNER)
        await core.dispatch(third.id, actor=OWNER)
        await wait_state(core, third.id, S.BLOCKED)   # asked again
    finally:
        await core.close()


async def test_an_owners_always_allow_is_for_the_task_and_cannot_loosen_an_approvers_rule(tmp_path, git_repo):
    steps = [permission("p1", "Bash", "git status"), permission("p2", "Bash", "make"), {"sleep": 0.1},
             permission("p3", "Bash", "make"), {"finish": "done"}]
    core, log = await core_with(tmp_path, git_repo, steps)
    try:
        task = await core.create_task(prompt="build", owner=OWNER)
        await core.dispatch(task.id, actor=OWNER)
        await wait_state(core, task.id, S.BLOCKED)
        [git] = await core.pending_interventions(task.id)
        with pytest.raises(ActionRefused, match=r"the rule `ask Bash\(git \*\)` \(repos.app\) decides this first"):
            await core.always_allow(git.id, actor=OWNER)
        assert (await core.get_intervention(git.id)).status is InterventionStatus.PENDING, "nothing was answered"
        await core.answer(git.id, _allow(), actor=OWNER)

        make = await wait_until(lambda: _pending_other_than(core, task.id, git.id), what="the make request")
        _, rule = await core.always_allow(make.id, actor=OWNER)
        assert (rule.task_id, rule.by_approver) == (task.id, False)
        await wait_state(core, task.id, S.AWAITING_REVIEW)   # the second `make` was allowed by the new rule
        assert [(a["id"], a["option"]) for a in answers(log)] == [("p1", "allow"), ("p2", "allow"), ("p3", "allow")]
        assert (await core.remove_policy_rule(rule.id, actor=OWNER)).removed_by == OWNER   # an owner's own rule
    finally:
        await core.close()


def _allow():
    from orchestrator import Answer
    return Answer(option_ids=("allow",))


async def _pending_other_than(core, task_id: int, seen: int):
    return next((iv for iv in await core.pending_interventions(task_id) if iv.id != seen), None)
