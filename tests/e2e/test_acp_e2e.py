"""ACP agents end to end: Slack emulator -> bot -> core -> `acp` harness -> an ACP agent process.

The scripted Python ACP agent (tests/agents/acp_agent.py) covers approve, deny-with-a-reply
and cancel quickly; the real `claude-agent-acp` (npm @agentclientprotocol/claude-agent-acp,
driving the Claude Code CLI against the fake Anthropic API in tests/fakes) covers the same
permission round trip with a real Bash tool call.
"""
from __future__ import annotations

import sys
from pathlib import Path

import pytest

from bot.ids import ActionId
from orchestrator import TaskState
from tests.agents.clis import require_cli
from tests.core.helpers import wait_state, wait_until
from tests.harness_helpers import (
    ACP_AGENT,
    WRITE_ASK,
    acp_agent_env,
    acp_agent_log,
    alive,
    group_members,
    processes_running,
)

from .agent_ui import blocked_on_permission, click_option
from .conftest import BOARD, OWNER
from .scenario import click_card, create_by_slash, thread_of, wait_thread

S = TaskState

pytestmark = pytest.mark.timeout(60)

# The agent keeps working a moment after an answer. Finishing within a few ms of the answer
# races the core: TaskRunner._to_review reads the task (blocked) before committing, the
# answer moves it to in_progress meanwhile, and the stale blocked -> in_progress transition
# raises IllegalTransition, leaving the task in_progress for good (a core bug, reported).
AFTER_ANSWER = {"sleep": 0.5}


def scripted_acp(tmp_path: Path, steps: list, next_steps: list | None = None) -> dict:
    env = acp_agent_env(tmp_path, steps, next_steps, prefix="acp-")
    return {"acp": {"kind": "acp", "command": [sys.executable, str(ACP_AGENT)], "mode": "default", "env": env,
                    "stop_grace_s": 1}}


def agent_log(tmp_path: Path, event: str) -> list[dict]:
    return acp_agent_log(tmp_path, event, prefix="acp-")


# ---- the scripted ACP agent ---------------------------------------------------------------

async def test_acp_permission_approved_in_slack_writes_the_file(emu, taskpin, tmp_path):
    await taskpin.start(scripted_acp(tmp_path, [{"say": "I will add the greeting."}, WRITE_ASK,
                                                AFTER_ANSWER, {"say": "Added greeting.txt."}]))
    core = taskpin.core
    task_id = await create_by_slash(emu, core, "Add a greeting file")
    request = await blocked_on_permission(emu, core, task_id, "Write greeting.txt")
    assert "greeting.txt" in emu.text_of(request)                 # the detail (path) is shown
    await click_option(emu, request, "Allow once")
    task = await wait_state(core, task_id, S.AWAITING_REVIEW)
    assert task.diff and task.diff.files == ("greeting.txt",)
    assert (core.workspaces.path_for(task_id) / "greeting.txt").read_text() == "hello\n"
    assert [e["option_id"] for e in agent_log(tmp_path, "permission")] == ["allow-once"]
    assert [e["mode"] for e in agent_log(tmp_path, "set_mode")] == ["default"]
    await wait_thread(emu, task_id, "ready for review")


async def test_acp_deny_with_a_thread_reply_reaches_the_agent(emu, taskpin, tmp_path):
    follow_up = [AFTER_ANSWER, {"write": {"path": "hello.txt", "content": "hi\n"}}, {"say": "got follow-up: {prompt}"}]
    await taskpin.start(scripted_acp(tmp_path, [WRITE_ASK], follow_up))
    core = taskpin.core
    task_id = await create_by_slash(emu, core, "Add a greeting file")
    await blocked_on_permission(emu, core, task_id, "Write greeting.txt")
    thread_ts, _ = thread_of(emu, task_id)
    await emu.user_message(OWNER, BOARD, "use hello.txt instead", thread_ts=thread_ts)
    task = await wait_state(core, task_id, S.AWAITING_REVIEW)
    # The agent got the reject option for the tool call...
    assert [(e["option_id"], e["kind"]) for e in agent_log(tmp_path, "permission")] == [("reject-once", "reject_once")]
    # ...and the reply's text as its next prompt, after that turn.
    prompts = [e["text"] for e in agent_log(tmp_path, "prompt")]
    assert len(prompts) == 2 and "use hello.txt instead" in prompts[1]
    assert task.diff and task.diff.files == ("hello.txt",)
    assert not (core.workspaces.path_for(task_id) / "greeting.txt").exists()


async def test_acp_cancel_while_a_tool_runs(emu, taskpin, tmp_path):
    steps = [{"write_pid": "agent.pid"}, {"run": {"id": "t1", "title": "sleep 30", "seconds": 30}}]
    await taskpin.start(scripted_acp(tmp_path, steps))
    core = taskpin.core
    task_id = await create_by_slash(emu, core, "Run something slow")
    await click_card(emu, OWNER, ActionId.DISPATCH, task_id)
    await wait_until(lambda: agent_log(tmp_path, "run_started"), timeout=15, what="the tool to start")
    pid = int((core.workspaces.path_for(task_id) / "agent.pid").read_text())
    await click_card(emu, OWNER, ActionId.CANCEL, task_id)
    task = await wait_state(core, task_id, S.FAILED)
    assert task.failure_reason == "cancelled"
    await wait_until(lambda: not alive(pid), timeout=5, what="the agent process to be gone")
    assert agent_log(tmp_path, "cancel"), "session/cancel never reached the agent"


# ---- the real claude-agent-acp ------------------------------------------------------------

@pytest.fixture
async def fake_anthropic():
    from tests.fakes.anthropic_api import FakeAnthropic

    async with FakeAnthropic() as api:
        yield api


def claude_acp(api, tmp_path: Path) -> dict:
    exe = require_cli("claude-agent-acp", "npm install @agentclientprotocol/claude-agent-acp")
    env = api.cli_env(home=tmp_path / "claude-home")
    env["IS_SANDBOX"] = "1"   # as root, the adapter's default (bypass-capable) setup refuses to start otherwise
    return {"claude": {"kind": "acp", "command": [exe], "mode": "default", "env": env, "stop_grace_s": 2}}


async def test_claude_agent_acp_asks_for_bash_and_the_owner_approves(emu, taskpin, tmp_path, fake_anthropic):
    from tests.fakes.anthropic_api import bash, block_text, text, tool_results

    api = fake_anthropic
    api.script(bash("echo hello > greeting.txt", "Write the greeting", preface="I'll create the file."),
               text("Created greeting.txt.", delay_s=0.5))   # see AFTER_ANSWER
    await taskpin.start(claude_acp(api, tmp_path))
    core = taskpin.core
    task_id = await create_by_slash(emu, core, "Add a greeting file")
    request = await blocked_on_permission(emu, core, task_id, "echo hello")
    shown = emu.text_of(request)
    assert "Bash" in shown and "echo hello &gt; greeting.txt" in shown   # the real command (escaped for Slack)
    assert not (core.workspaces.path_for(task_id) / "greeting.txt").exists()
    await click_option(emu, request, "Yes")
    task = await wait_state(core, task_id, S.AWAITING_REVIEW, timeout=30)
    assert task.diff and task.diff.files == ("greeting.txt",)
    assert (core.workspaces.path_for(task_id) / "greeting.txt").read_text() == "hello\n"
    results = tool_results(api.main_requests[-1])
    assert results and not results[-1].get("is_error"), [block_text(r) for r in results]
    assert any("finished: Created greeting.txt." in line for line in core.tail_log(task_id))


async def test_claude_agent_acp_deny_with_a_reply(emu, taskpin, tmp_path, fake_anthropic):
    from tests.fakes.anthropic_api import all_text, bash, block_text, text, tool_results

    api = fake_anthropic
    api.script(bash("echo hello > greeting.txt", "Write the greeting"),
               text("Understood, I did not write it.", delay_s=0.5),   # see AFTER_ANSWER
               text("OK, I will use hello.txt next time."))
    await taskpin.start(claude_acp(api, tmp_path))
    core = taskpin.core
    task_id = await create_by_slash(emu, core, "Add a greeting file")
    await blocked_on_permission(emu, core, task_id, "echo hello")
    thread_ts, _ = thread_of(emu, task_id)
    await emu.user_message(OWNER, BOARD, "use hello.txt instead", thread_ts=thread_ts)
    await wait_state(core, task_id, S.AWAITING_REVIEW, timeout=30)
    assert not (core.workspaces.path_for(task_id) / "greeting.txt").exists()
    # The model saw the rejected tool call, then the reply as the next user message.
    # (The CLI may send more tool-offering side requests, e.g. a prompt suggestion: look by content.)
    bodies = api.main_requests
    denied = next(i for i, b in enumerate(bodies)
                  if any(r.get("is_error") for r in tool_results(b)) and "use hello.txt" not in all_text(b))
    assert "refused" in block_text(tool_results(bodies[denied])[-1]).lower()
    later = [all_text(b) for b in bodies[denied + 1:]]
    assert any("use hello.txt instead" in t and "I denied your permission request" in t for t in later)


async def test_claude_agent_acp_cancel_while_bash_runs_leaves_no_process(emu, taskpin, tmp_path, fake_anthropic):
    from tests.fakes.anthropic_api import bash

    api = fake_anthropic
    api.script(bash('python3 -c "import time; time.sleep(31.5)"', "Wait a while"))
    await taskpin.start(claude_acp(api, tmp_path))
    core = taskpin.core
    task_id = await create_by_slash(emu, core, "Wait for something")
    request = await blocked_on_permission(emu, core, task_id, "time.sleep(31.5)")
    pgid = core._runners[task_id].session.pid
    await click_option(emu, request, "Yes")
    # The CLI runs Bash in a session of its own (not in the agent's process group): find it.
    await wait_until(lambda: processes_running("time.sleep(31.5)"), timeout=15, what="the command to run")
    await click_card(emu, OWNER, ActionId.CANCEL, task_id)
    task = await wait_state(core, task_id, S.FAILED, timeout=15)
    assert task.failure_reason == "cancelled"
    await wait_until(lambda: not group_members(pgid), timeout=5, what="the agent's process group to be empty")
    await wait_until(lambda: not processes_running("time.sleep(31.5)"), timeout=5, what="the command to be gone")
