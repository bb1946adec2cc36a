"""The real Claude Code CLI (claude-code harness) driven through the real bot and the Slack
emulator, offline against a scripted fake of the Anthropic Messages API."""
from __future__ import annotations

import uuid

import pytest

from bot.emulator.blockkit import iter_elements
from bot.ids import ActionId
from orchestrator import TaskState
from orchestrator.runner import RESTART_PROMPT
from tests.core.helpers import wait_state, wait_until
from tests.fakes.anthropic_api import FakeAnthropic, all_text, ask, bash, block_text, question, text, tool_results
from tests.harness_helpers import alive, claude_code_options, processes_running

from .conftest import BOARD, OWNER
from .scenario import click_card, create_by_slash, thread_of, wait_board, wait_thread

pytest.importorskip("claude_agent_sdk")

S = TaskState


@pytest.fixture
async def api():
    async with FakeAnthropic(default_text="All done.") as fake:
        yield fake


def claude_agent(api: FakeAnthropic, tmp_path) -> dict:
    return {"claude": claude_code_options(api, tmp_path / "claude-home")}


async def click_option(emu, message: dict, label: str):
    """Click the button labelled `label` on an intervention message in the thread."""
    for _, el in iter_elements(message.get("blocks") or []):
        if el.get("type") == "button" and label in (el.get("text") or {}).get("text", ""):
            return await emu.click_button(OWNER, BOARD, message["ts"], el["action_id"], el.get("value"))
    raise AssertionError(f"no {label!r} button on {emu.text_of(message)!r}")


async def dispatch(emu, core, prompt: str) -> int:
    task_id = await create_by_slash(emu, core, prompt)
    await click_card(emu, OWNER, ActionId.DISPATCH, task_id)
    return task_id


async def test_approving_the_real_bash_request_writes_the_file_and_goes_to_review(emu, taskpin, api, tmp_path):
    api.script(bash("echo hi > out.txt", description="Write the greeting file"), text("Wrote out.txt with hi."))
    await taskpin.start(claude_agent(api, tmp_path))
    core = taskpin.core
    task_id = await dispatch(emu, core, "Write hi into out.txt")

    await wait_state(core, task_id, S.BLOCKED)
    request = await wait_thread(emu, task_id, "echo hi", timeout=20)
    assert "out.txt" in emu.text_of(request)
    await wait_board(emu, lambda t: "Blocked" in t, what="card blocked")

    await click_option(emu, request, "Approve")
    task = await wait_state(core, task_id, S.AWAITING_REVIEW, timeout=30)
    worktree = core.workspaces.path_for(task_id)
    assert task.diff and task.diff.files == ("out.txt",)
    assert (worktree / "out.txt").read_text() == "hi\n"
    await wait_thread(emu, task_id, "ready for review")
    await wait_board(emu, lambda t: "out.txt" in t or "+1" in t, what="diff summary on the card")
    assert task.cost_usd > 0 and task.input_tokens > 0
    assert "Write hi into out.txt" in all_text(api.main_requests[0])


async def test_a_thread_reply_denies_and_reaches_the_model(emu, taskpin, api, tmp_path):
    api.script(bash("rm -rf build"), text("Understood, leaving build alone."))
    await taskpin.start(claude_agent(api, tmp_path))
    core = taskpin.core
    task_id = await dispatch(emu, core, "Clean the build")
    await wait_state(core, task_id, S.BLOCKED)
    await wait_thread(emu, task_id, "rm -rf build", timeout=20)

    ts, _ = thread_of(emu, task_id)
    await emu.user_message(OWNER, BOARD, "Do not delete build, run make clean DENY-TEXT-7", thread_ts=ts)
    await wait_state(core, task_id, S.AWAITING_REVIEW, timeout=30)
    results = [r for body in api.main_requests for r in tool_results(body)]
    assert any("DENY-TEXT-7" in block_text(r) and r.get("is_error") for r in results)


async def test_cancel_while_a_tool_runs_fails_the_task_and_leaves_no_process(emu, taskpin, api, tmp_path):
    marker = f"e2e-long-{uuid.uuid4().hex[:8]}"
    api.script(bash(f"python3 -c 'import time; time.sleep(30)' {marker}"))
    await taskpin.start(claude_agent(api, tmp_path))
    core = taskpin.core
    task_id = await dispatch(emu, core, "Run the long job")
    request = await wait_thread(emu, task_id, marker, timeout=20)
    await click_option(emu, request, "Approve")
    await wait_until(lambda: processes_running(marker), timeout=20, what="the long command to run")
    runner = core._runners[task_id]
    cli = runner.session.pid
    assert cli and alive(cli)

    await click_card(emu, OWNER, ActionId.CANCEL, task_id)
    failed = await wait_state(core, task_id, S.FAILED, timeout=20)
    assert failed.failure_reason == "cancelled"
    await wait_until(lambda: not processes_running(marker) and not alive(cli), timeout=10,
                     what="no CLI and no long command left")
    await wait_board(emu, lambda t: "cancelled" in t, what="the cancelled card")


async def test_ask_user_question_answered_by_a_button(emu, taskpin, api, tmp_path):
    api.script(ask([question("Which greeting should I use?", ["Hi", "Hello"], header="Greeting")]),
               bash("echo hello > greeting.txt"), text("Wrote greeting.txt."))
    await taskpin.start(claude_agent(api, tmp_path))
    core = taskpin.core
    task_id = await dispatch(emu, core, "Add a greeting file")
    asked = await wait_thread(emu, task_id, "Which greeting should I use?", timeout=20)
    await click_option(emu, asked, "Hello")

    permission = await wait_thread(emu, task_id, "echo hello", timeout=20)
    answers = [block_text(r) for body in api.main_requests for r in tool_results(body)]
    assert any('"Which greeting should I use?"="Hello"' in a for a in answers)
    await click_option(emu, permission, "Approve")
    task = await wait_state(core, task_id, S.AWAITING_REVIEW, timeout=30)
    assert task.diff and task.diff.files == ("greeting.txt",)


async def test_a_restart_in_the_middle_resumes_the_claude_session(emu, taskpin, api, tmp_path):
    api.script(bash("echo one > one.txt"))
    agents = claude_agent(api, tmp_path)
    await taskpin.start(agents)
    core = taskpin.core
    task_id = await dispatch(emu, core, "Write one.txt ORIGINAL-PROMPT-5")
    await wait_state(core, task_id, S.BLOCKED)
    await wait_thread(emu, task_id, "echo one", timeout=20)
    session_id = await core.store.last_session_id(task_id)
    assert session_id

    await taskpin.stop()          # runtime.close(): the session stops, the task stays live
    before = len(api.main_requests)
    api.script(bash("echo two > two.txt"), text("Finished after the restart."))
    await taskpin.start(agents)   # a new Runtime on the same database and emulator
    core = taskpin.core

    await api.wait_requests(before + 1, timeout=30)
    resumed = api.main_requests[before]
    history = all_text(resumed)
    assert "ORIGINAL-PROMPT-5" in history and "echo one > one.txt" in history
    assert RESTART_PROMPT in history

    request = await wait_thread(emu, task_id, "echo two", timeout=20)
    await click_option(emu, request, "Approve")
    task = await wait_state(core, task_id, S.AWAITING_REVIEW, timeout=30)
    assert task.diff and "two.txt" in task.diff.files
    assert await core.store.last_session_id(task_id) == session_id
    assert not (core.workspaces.path_for(task_id) / "one.txt").exists()   # denied when taskpin stopped
    await wait_board(emu, lambda t: "review" in t.lower(), what="the card in review")
