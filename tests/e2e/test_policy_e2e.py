"""Approval policies end to end through the Slack emulator with real agent processes: rules in
taskpin.toml answer requests without a human (the command kind, and the real Claude Code CLI),
the thread gets one quiet digest per burst, Always allow this writes a rule that /task policy
lists and removes."""
from __future__ import annotations

import pytest

from bot.ids import ActionId, make_action_id
from orchestrator import PolicyDecided, TaskState
from tests.core.helpers import Recorder, scripted, wait_state

from .conftest import APPROVER, BOARD, OWNER
from .scenario import click_card, thread_of, wait_thread
from .ui import (  # noqa: F401
    buttons,
    ephemeral,
    every_ack_is_fast,
    fast,
    in_thread,
    lines_of_type,
    slash_task,
)

S = TaskState
POLICY = ["allow Read", "allow Bash(pytest *)", "deny Bash(rm -rf *)"]


def permission(rid: str, tool: str, detail: str) -> dict:
    return {"ask": {"id": rid, "kind": "permission", "prompt": f"May I use {tool}?", "tool": tool, "detail": detail}}


def digests(emu, task_id: int) -> list[dict]:
    _, replies = thread_of(emu, task_id)
    return [m for m in replies if "approval policy answered" in emu.text_of(m)]


async def settled_without_a_human(emu, core, title: str, files: tuple[str, ...]):
    """Create and dispatch a task by Slack; it reaches review with `files` changed and was never
    blocked (every request was answered by a rule). Returns the task."""
    task = await slash_task(emu, core, title)
    await click_card(emu, OWNER, ActionId.DISPATCH, task.id)
    done = await wait_state(core, task.id, S.AWAITING_REVIEW, timeout=60)
    assert done.diff and done.diff.files == files
    assert (S.IN_PROGRESS, S.BLOCKED) not in [(h.from_state, h.to_state) for h in await core.history(task.id)]
    return done


async def test_rules_answer_the_agent_a_digest_tells_the_thread_and_always_allow_adds_a_rule(emu, taskpin, tmp_path,
                                                                                            git_repo):
    log = tmp_path / "stdin.log"
    steps = [permission("p1", "Bash", "pytest -q"), permission("p2", "Read", "README.md"),
             permission("p3", "Bash", "rm -rf build"), permission("p4", "Bash", "make lint"),
             permission("p5", "Bash", "make lint"), {"finish": "done"}]
    repos = {"app": {"path": str(git_repo), "policy": POLICY}}
    await taskpin.start({"bot": scripted(steps, env={"SCRIPTED_AGENT_LOG": str(log)})}, repos=repos)
    core = taskpin.core
    recorder = Recorder(core)
    task = await slash_task(emu, core, "Tidy the build")
    await click_card(emu, OWNER, ActionId.DISPATCH, task.id)

    # Three requests settled by rule; the fourth asks, with Always allow this under it.
    question = await in_thread(emu, task.id, "make lint")
    assert [(a["id"], a["option"]) for a in lines_of_type(log, "answer")] == \
        [("p1", "allow"), ("p2", "allow"), ("p3", "deny")]
    assert "denied by taskpin policy rule `Bash(rm -rf *)` (repos.app)" in lines_of_type(log, "answer")[2]["text"]
    [digest] = await emu.wait_for(lambda: digests(emu, task.id), timeout=6)
    text = emu.text_of(digest)
    assert "answered 3 requests without asking (2 allowed, 1 denied)" in text, "one message for the burst"
    assert "`pytest -q`" in text and "`rm -rf build`" in text and "Bash(rm -rf *)" in text
    assert [e.effect for e in recorder.of(PolicyDecided)] == ["allow", "allow", "deny"]

    always = next(b for b in buttons(question) if b["text"]["text"] == "Always allow this")
    assert always["action_id"] == make_action_id(ActionId.ANSWER_ALWAYS, always["value"])
    fast(await emu.click_button(APPROVER, BOARD, question["ts"], always["action_id"], always["value"]))
    told = await ephemeral(emu, APPROVER, "from now on without asking for every task of repository app")
    assert "policy rule 1 (allow Bash(make lint))" in emu.text_of(told)
    await wait_thread(emu, task.id, "policy rule 1 added: allow Bash(make lint) for every task of repository app")
    await wait_state(core, task.id, S.AWAITING_REVIEW)
    assert [a["option"] for a in lines_of_type(log, "answer")][3:] == ["allow", "allow"], "p5 by the new rule"
    await emu.wait_for(lambda: len(digests(emu, task.id)) == 2, timeout=6)
    assert "answered 1 request without asking (1 allowed)" in emu.text_of(digests(emu, task.id)[1])
    history = [(h.from_state, h.to_state) for h in await core.history(task.id)]
    assert history.count((S.IN_PROGRESS, S.BLOCKED)) == 1, "only make lint, once, needed a human"

    # /task policy: taskpin.toml's rules and the added one; the owner cannot remove an approver's rule.
    fast(await emu.slash_command(OWNER, "/task", "policy"))
    listing = emu.text_of(await ephemeral(emu, OWNER, "Approval policy"))
    assert "repos.app" in listing and "`deny Bash(rm -rf *)`" in listing
    assert "rule 1: `allow Bash(make lint)` for every task of app" in listing
    fast(await emu.slash_command(OWNER, "/task", "policy remove 1"))
    await ephemeral(emu, OWNER, "Only an approver can remove policy rule 1")
    fast(await emu.slash_command(APPROVER, "/task", "policy remove 1"))
    await ephemeral(emu, APPROVER, "Removed policy rule 1 (allow Bash(make lint))")
    fast(await emu.slash_command(APPROVER, "/task", "policy remove 1"))
    await ephemeral(emu, APPROVER, "no policy rule 1 any more")
    assert (await core.policy_rules()).added == []


async def test_always_allow_by_the_owner_covers_only_the_task_and_a_stranger_cannot_click_it(emu, taskpin, tmp_path,
                                                                                           git_repo):
    steps = [permission("p1", "WebFetch", "https://example.com/api"), {"finish": "done"}]
    await taskpin.start({"bot": scripted(steps)})
    core = taskpin.core
    task = await slash_task(emu, core, "Read the API docs")
    await click_card(emu, OWNER, ActionId.DISPATCH, task.id)
    question = await in_thread(emu, task.id, "example.com/api")
    always = next(b for b in buttons(question) if b["text"]["text"] == "Always allow this")
    fast(await emu.click_button("U_OTHER", BOARD, question["ts"], always["action_id"], always["value"]))
    await ephemeral(emu, "U_OTHER", "Only the task's owner or an approver can answer")
    assert (await core.get_task(task.id)).state is S.BLOCKED
    fast(await emu.click_button(OWNER, BOARD, question["ts"], always["action_id"], always["value"]))
    await ephemeral(emu, OWNER, f"from now on without asking for task #{task.id}")
    await wait_state(core, task.id, S.AWAITING_REVIEW)
    [rule] = (await core.policy_rules()).added
    assert (rule.task_id, rule.by_approver, rule.added_by) == (task.id, False, OWNER)


# ---- a real adapter: the Claude Code CLI against a fake Anthropic API --------------------------

async def test_claude_code_runs_an_allowed_command_and_hears_a_denial_without_a_human(emu, taskpin, tmp_path,
                                                                                    git_repo):
    pytest.importorskip("claude_agent_sdk")
    from tests.fakes.anthropic_api import (
        FakeAnthropic,
        bash,
        block_text,
        text,
        tool_results,
    )
    from tests.harness_helpers import claude_code_options

    async with FakeAnthropic(default_text="All done.") as api:
        api.script(bash("touch out.txt", description="Create the file"), bash("rm -rf build"),
                   text("Created out.txt and left build alone."))
        repos = {"app": {"path": str(git_repo), "policy": ["allow Bash(touch *)", "deny Bash(rm -rf *)"]}}
        await taskpin.start({"claude": claude_code_options(api, tmp_path / "claude-home")}, repos=repos)
        core = taskpin.core
        task = await settled_without_a_human(emu, core, "Create out.txt", ("out.txt",))
        results = [r for body in api.main_requests for r in tool_results(body)]
        assert any("denied by taskpin policy rule `Bash(rm -rf *)` (repos.app)" in block_text(r) and r.get("is_error")
                   for r in results), "Claude was told which rule denied it"
        await emu.wait_for(lambda: digests(emu, task.id), timeout=6)
        assert "1 allowed, 1 denied" in emu.text_of(digests(emu, task.id)[0])


async def test_an_acp_agent_s_permission_requests_are_settled_by_rules_without_a_human(emu, taskpin, tmp_path, git_repo):
    from .test_acp_e2e import AFTER_ANSWER, agent_log, scripted_acp

    secret = {"ask": {"id": "call-2", "title": "Write secrets.env", "kind": "edit",
                      "input": {"path": "secrets.env", "content": "TOKEN=1\n"},
                      "write": {"path": "secrets.env", "content": "TOKEN=1\n"}}}
    greeting = {"ask": {"id": "call-1", "title": "Write greeting.txt", "kind": "edit",
                        "input": {"path": "greeting.txt", "content": "hello\n"},
                        "write": {"path": "greeting.txt", "content": "hello\n"}}}
    repos = {"app": {"path": str(git_repo), "policy": ["allow edit(greeting.txt)", "deny edit(secrets*)"]}}
    await taskpin.start(scripted_acp(tmp_path, [greeting, secret, AFTER_ANSWER, {"say": "Wrote the greeting."}]),
                        repos=repos)
    core = taskpin.core
    task = await settled_without_a_human(emu, core, "Add a greeting file", ("greeting.txt",))   # denied: not written
    assert [e["option_id"] for e in agent_log(tmp_path, "permission")] == ["allow-once", "reject-once"]
    await emu.wait_for(lambda: digests(emu, task.id), timeout=6)
    assert "1 allowed, 1 denied" in emu.text_of(digests(emu, task.id)[0])


async def test_codex_commands_are_settled_by_rules_without_a_human(emu, taskpin, tmp_path, git_repo):
    from tests.fakes.openai_responses import FakeResponses

    from .test_codex_e2e import codex_agent

    async with FakeResponses() as api:
        api.add([{"exec": "printf 'hello\\n' > greeting.txt"}], [{"exec": "rm -rf build"}], [{"say": "Done."}])
        repos = {"app": {"path": str(git_repo), "policy": ["allow command(*greeting.txt*)", "deny command(*rm -rf*)"]}}
        await taskpin.start(codex_agent(api, tmp_path), repos=repos)
        core = taskpin.core
        task = await settled_without_a_human(emu, core, "Add a greeting file", ("greeting.txt",))
        after_denial = " ".join(api.function_outputs(api.requests[2])).lower()
        assert "rejected" in after_denial or "denied" in after_denial, after_denial

        def said() -> str:   # the two decisions may come in one digest or in two
            return " ".join(emu.text_of(m) for m in digests(emu, task.id))
        await emu.wait_for(lambda: "denied by" in said() and "allowed by" in said(), timeout=10)
        assert "greeting.txt" in said() and "rm -rf build" in said()
