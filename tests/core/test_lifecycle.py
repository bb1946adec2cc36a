"""The whole life of a task through the core, with a real agent process and a real repo."""
from __future__ import annotations

import asyncio
import subprocess

import pytest

from orchestrator import (
    ActionRefused,
    Answer,
    IllegalTransition,
    InterventionRequested,
    InterventionResolved,
    InvalidInput,
    NotAllowed,
    TaskState,
    TaskStateChanged,
)

from .helpers import Recorder, make_settings, scripted, started, wait_state, wait_until

S = TaskState


def _git(repo, *args):
    return subprocess.run(["git", *args], cwd=repo, check=True, capture_output=True, text=True).stdout.strip()


async def test_full_life_cycle_with_question_and_changes_requested(tmp_path, git_repo, db_url):
    steps = [
        {"echo_prompt": True},
        {"ask": {"id": "q1", "kind": "question", "prompt": "Which greeting?",
                 "options": [{"id": "hi", "label": "Hi"}, {"id": "hello", "label": "Hello"}]}},
        {"write_file": {"path": "greeting.txt", "content": "hello\n"}},
        {"emit": {"type": "usage", "input_tokens": 100, "output_tokens": 10, "cost_usd": 0.02}},
        {"finish": "wrote greeting.txt"},
    ]
    settings = make_settings(tmp_path, git_repo, {"bot": scripted(steps)}, db_url=db_url, approvers=["U_LEAD"])
    core = await started(settings)
    rec = Recorder(core)
    try:
        task = await core.create_task(prompt="Add a greeting file\nwith details", owner="U_OWNER")
        assert task.title == "Add a greeting file" and task.branch == f"taskpin/{task.id}-add-a-greeting-file"
        await core.dispatch(task.id, actor="U_OWNER")
        await wait_state(core, task.id, S.BLOCKED)
        await wait_until(lambda: rec.of(InterventionRequested), what="the intervention event")
        [asked] = rec.of(InterventionRequested)
        assert asked.intervention.prompt == "Which greeting?"
        assert [o.id for o in asked.intervention.options] == ["hi", "hello"]

        with pytest.raises(NotAllowed, match="only the task's owner or an approver"):
            await core.answer(asked.intervention.id, Answer(("hi",)), actor="U_STRANGER")
        with pytest.raises(InvalidInput, match="not one of the offered options"):
            await core.answer(asked.intervention.id, Answer(("nope",)), actor="U_OWNER")
        await core.answer(asked.intervention.id, Answer(("hello",)), actor="U_OWNER")
        with pytest.raises(ActionRefused, match="already answered"):
            await core.answer(asked.intervention.id, Answer(("hi",)), actor="U_LEAD")

        task = await wait_state(core, task.id, S.AWAITING_REVIEW)
        assert task.diff.files == ("greeting.txt",) and task.diff.insertions == 1
        assert task.cost_usd == pytest.approx(0.02) and task.input_tokens == 100
        log = "\n".join(core.tail_log(task.id))
        assert '"option":"hello"' in log and "prompt: Add a greeting file" in log

        await core.request_changes(task.id, "Also say goodbye", actor="U_LEAD")
        task = await wait_state(core, task.id, S.BLOCKED)   # the agent asks again in its next session
        prompt_lines = [line for line in core.tail_log(task.id) if line.startswith("prompt:")]
        assert "Also say goodbye" in "\n".join(core.tail_log(task.id))
        [pending] = await core.pending_interventions(task.id)
        await core.answer(pending.id, Answer(text="hi there"), actor="U_OWNER")
        task = await wait_state(core, task.id, S.AWAITING_REVIEW)
        await core.approve(task.id, actor="U_OWNER")
        task = await core.get_task(task.id)
        assert task.state is S.COMPLETED
        assert _git(git_repo, "log", "-1", "--format=%s", task.branch) == "Add a greeting file"

        history = [(h.from_state, h.to_state) for h in await core.history(task.id)]
        assert history == [
            (None, S.BACKLOG), (S.BACKLOG, S.QUEUED), (S.QUEUED, S.IN_PROGRESS),
            (S.IN_PROGRESS, S.BLOCKED), (S.BLOCKED, S.IN_PROGRESS), (S.IN_PROGRESS, S.AWAITING_REVIEW),
            (S.AWAITING_REVIEW, S.QUEUED),
            (S.QUEUED, S.IN_PROGRESS), (S.IN_PROGRESS, S.BLOCKED), (S.BLOCKED, S.IN_PROGRESS), (S.IN_PROGRESS, S.AWAITING_REVIEW),
            (S.AWAITING_REVIEW, S.APPROVING), (S.APPROVING, S.COMPLETED)]
        await core.bus.drain()
        changes = [(e.from_state, e.to_state) for e in rec.of(TaskStateChanged)]
        assert changes == history[1:]
        assert len(rec.of(InterventionResolved)) == 2
        assert prompt_lines  # the second session got the original task plus the feedback
    finally:
        await core.close()


async def test_illegal_transitions_are_refused_with_from_and_to(tmp_path, git_repo):
    core = await started(make_settings(tmp_path, git_repo, {"bot": scripted([{"finish": "ok"}])}))
    try:
        task = await core.create_task(prompt="x", owner="U1")
        with pytest.raises(IllegalTransition, match="from backlog to completed"):
            await core.approve(task.id, actor="U1")
        with pytest.raises(IllegalTransition, match="from backlog to backlog"):
            await core.retry(task.id, actor="U1")
        await core.dispatch(task.id, actor="U1")
        with pytest.raises(IllegalTransition, match="already running|awaiting_review"):
            await core.dispatch(task.id, actor="U1")
        await wait_state(core, task.id, S.AWAITING_REVIEW)
        with pytest.raises(IllegalTransition, match="from awaiting_review to backlog"):
            await core.retry(task.id, actor="U1")
        with pytest.raises(NotAllowed):
            await core.reject(task.id, actor="U2")
        await core.reject(task.id, actor="U1", reason="not needed")
        task = await core.get_task(task.id)
        assert task.state is S.FAILED and task.failure_reason == "rejected by U1: not needed"
        await core.retry(task.id, actor="U1")
        assert (await core.get_task(task.id)).state is S.BACKLOG
    finally:
        await core.close()


async def test_bad_input_creates_nothing(tmp_path, git_repo):
    core = await started(make_settings(tmp_path, git_repo, {"bot": scripted([])}, allowed_users=["U1"]))
    try:
        for kwargs, message in [
            (dict(prompt="   ", owner="U1"), "needs a prompt"),
            (dict(prompt="x", owner="U1", repo="nope"), "no repository named 'nope'; known: app"),
            (dict(prompt="x", owner="U1", agent="ghost"), "no agent named 'ghost'; known: bot"),
            (dict(prompt="x" * 40_001, owner="U1"), "limit is 40000"),
            (dict(prompt="x", owner="U1", base_branch="../evil"), "not a valid branch name"),
        ]:
            with pytest.raises(InvalidInput, match=message):
                await core.create_task(**kwargs)
        with pytest.raises(NotAllowed, match="allowed users"):
            await core.create_task(prompt="x", owner="U2")
        assert await core.list_tasks() == []
    finally:
        await core.close()


async def test_concurrent_dispatch_starts_exactly_one_session(tmp_path, git_repo, db_url):
    steps = [{"sleep": 0.3}, {"finish": "ok"}]
    core = await started(make_settings(tmp_path, git_repo, {"bot": scripted(steps)}, db_url=db_url))
    try:
        task = await core.create_task(prompt="race", owner="U1")
        results = await asyncio.gather(*(core.dispatch(task.id, actor=f"U{i}") for i in range(8)),
                                       return_exceptions=True)
        assert sum(not isinstance(r, Exception) for r in results) == 1
        assert all(isinstance(r, IllegalTransition) for r in results if isinstance(r, Exception))
        await wait_state(core, task.id, S.AWAITING_REVIEW)
        assert (await core.get_task(task.id)).attempts == 1
    finally:
        await core.close()


async def test_legacy_marker_agent_gets_the_answer_as_a_plain_line(tmp_path, git_repo):
    steps = [{"ask_marker": "Which port?"}, {"finish": "done"}]
    core = await started(make_settings(tmp_path, git_repo, {"bot": scripted(steps)}))
    try:
        task = await core.create_task(prompt="configure", owner="U1")
        await core.dispatch(task.id, actor="U1")
        await wait_state(core, task.id, S.BLOCKED)
        [iv] = await core.pending_interventions(task.id)
        assert iv.kind.value == "input" and iv.prompt == "Which port?"
        await core.answer(iv.id, Answer(text="8080\nplease"), actor="U1")
        await wait_state(core, task.id, S.AWAITING_REVIEW)
        assert "got answer: 8080 please" in core.tail_log(task.id)
    finally:
        await core.close()


async def test_permission_reply_denies_and_carries_the_text(tmp_path, git_repo):
    steps = [{"ask": {"id": "p1", "kind": "permission", "prompt": "Run a command", "tool": "Bash",
                      "detail": "rm -rf build"}}, {"finish": "done"}]
    core = await started(make_settings(tmp_path, git_repo, {"bot": scripted(steps)}))
    try:
        task = await core.create_task(prompt="clean", owner="U1")
        await core.dispatch(task.id, actor="U1")
        await wait_state(core, task.id, S.BLOCKED)
        [iv] = await core.pending_interventions(task.id)
        assert (iv.tool, iv.detail) == ("Bash", "rm -rf build")
        resolved = await core.answer(iv.id, Answer(text="no, keep build/"), actor="U1")
        assert resolved.answer_options == ("deny",) and resolved.answer_text == "no, keep build/"
        await wait_state(core, task.id, S.AWAITING_REVIEW)
        answer_line = next(line for line in core.tail_log(task.id) if line.startswith("got answer:"))
        assert '"option":"deny"' in answer_line and "no, keep build/" in answer_line
    finally:
        await core.close()


async def test_follow_up_reaches_a_running_agent(tmp_path, git_repo):
    steps = [{"wait_message": True}, {"finish": "done"}]
    core = await started(make_settings(tmp_path, git_repo, {"bot": scripted(steps)}))
    try:
        task = await core.create_task(prompt="wait", owner="U1")
        assert await core.follow_up(task.id, "hello", actor="U1") is False   # not running yet
        await core.dispatch(task.id, actor="U1")
        await wait_until(lambda: core.accepts_follow_up(task.id), what="session")
        with pytest.raises(NotAllowed):
            await core.follow_up(task.id, "hi", actor="U_OTHER")
        assert await core.follow_up(task.id, "use tabs", actor="U1") is True
        await wait_state(core, task.id, S.AWAITING_REVIEW)
        assert "got message: use tabs" in core.tail_log(task.id)
    finally:
        await core.close()
