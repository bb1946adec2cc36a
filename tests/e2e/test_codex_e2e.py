"""Codex end to end: Slack emulator -> bot -> core -> `codex` harness -> the real `codex app-server`
(npm @openai/codex), whose model is the fake Responses API in tests/fakes/openai_responses.py.
"""
from __future__ import annotations

import os
from pathlib import Path

import pytest

from bot.ids import ActionId
from orchestrator import TaskState
from tests.agents.clis import require_cli
from tests.core.helpers import wait_state, wait_until
from tests.fakes.openai_responses import MODEL, FakeResponses
from tests.harness_helpers import cmdline, codex_options

from .agent_ui import blocked_on_permission, click_option
from .conftest import BOARD, OWNER
from .scenario import click_card, create_by_slash, thread_of, wait_board, wait_thread

S = TaskState
pytestmark = pytest.mark.timeout(60)


@pytest.fixture
async def api():
    async with FakeResponses() as fake:
        yield fake


def codex_agent(api: FakeResponses, tmp_path: Path, **options) -> dict:
    exe = require_cli("codex", "npm install @openai/codex")
    return {"codex": codex_options(exe, api, tmp_path, model=MODEL, **options)}


def processes_in(path: Path) -> dict[int, int]:
    """pid -> session id of every live process whose working directory is `path`."""
    found = {}
    for name in os.listdir("/proc"):
        if not name.isdigit():
            continue
        try:
            if os.readlink(f"/proc/{name}/cwd") != str(path):
                continue
            with open(f"/proc/{name}/stat", "rb") as fh:
                fields = fh.read().rsplit(b")", 1)[1].split()
        except OSError:
            continue
        if fields[0] != b"Z":
            found[int(name)] = int(fields[3])
    return found


def alive_in_sessions(sessions: set[int]) -> list[int]:
    pids = []
    for name in os.listdir("/proc"):
        if not name.isdigit():
            continue
        try:
            with open(f"/proc/{name}/stat", "rb") as fh:
                fields = fh.read().rsplit(b")", 1)[1].split()
        except OSError:
            continue
        if fields[0] != b"Z" and int(fields[3]) in sessions:
            pids.append(int(name))
    return pids


async def test_codex_command_approved_in_slack_writes_the_file(emu, taskpin, tmp_path, api):
    api.add([{"say": "I'll create the greeting."}, {"exec": "printf 'hello\\n' > greeting.txt"}],
            [{"say": "Created greeting.txt."}])
    await taskpin.start(codex_agent(api, tmp_path))
    core = taskpin.core
    task_id = await create_by_slash(emu, core, "Add a greeting file")
    request = await blocked_on_permission(emu, core, task_id, "greeting.txt")
    assert "printf" in emu.text_of(request)                       # the real command is shown
    workdir = core.workspaces.path_for(task_id)
    assert not (workdir / "greeting.txt").exists()
    await click_option(emu, request, "Approve")
    task = await wait_state(core, task_id, S.AWAITING_REVIEW, timeout=30)
    assert task.diff and task.diff.files == ("greeting.txt",)
    assert (workdir / "greeting.txt").read_text() == "hello\n"
    assert task.input_tokens == 200 and task.output_tokens == 40   # two model requests, as reported
    assert any("finished: Created greeting.txt." in line for line in core.tail_log(task_id))
    await wait_thread(emu, task_id, "ready for review")
    await wait_board(emu, lambda t: "greeting.txt" in t or "+1" in t, what="diff summary on the card")


async def test_codex_deny_with_a_thread_reply_reaches_the_model(emu, taskpin, tmp_path, api):
    api.add([{"exec": "printf 'hello\\n' > greeting.txt"}], [{"say": "Understood, I did not write it."}])
    await taskpin.start(codex_agent(api, tmp_path))
    core = taskpin.core
    task_id = await create_by_slash(emu, core, "Add a greeting file")
    await blocked_on_permission(emu, core, task_id, "greeting.txt")
    thread_ts, _ = thread_of(emu, task_id)
    await emu.user_message(OWNER, BOARD, "use hello.txt instead", thread_ts=thread_ts)
    await wait_state(core, task_id, S.AWAITING_REVIEW, timeout=30)
    assert not (core.workspaces.path_for(task_id) / "greeting.txt").exists()
    # The model saw the declined call, then the owner's reply as a user message.
    assert "rejected by user" in api.function_outputs(api.requests[1])[0]
    assert "use hello.txt instead" not in str(api.requests[0])
    assert any("use hello.txt instead" in t for body in api.requests[1:] for t in api.user_texts(body))


async def test_codex_cancel_while_a_command_runs(emu, taskpin, tmp_path, api):
    api.add([{"exec": "sleep 30", "yield_ms": 30000}])
    await taskpin.start(codex_agent(api, tmp_path, approval_policy="never"))
    core = taskpin.core
    task_id = await create_by_slash(emu, core, "Run something slow")
    await click_card(emu, OWNER, ActionId.DISPATCH, task_id)
    workdir = core.workspaces.path_for(task_id)

    def sleeping():
        procs = processes_in(workdir)
        return procs if any(cmdline(p).startswith("sleep 30") for p in procs) else None
    procs = await wait_until(sleeping, timeout=20, what="sleep 30 to run in the worktree")
    sessions = set(procs.values()) - {os.getsid(0)}
    await click_card(emu, OWNER, ActionId.CANCEL, task_id)
    task = await wait_state(core, task_id, S.FAILED)
    assert task.failure_reason == "cancelled"
    await wait_until(lambda: not processes_in(workdir) and not alive_in_sessions(sessions), timeout=5,
                     what="codex and sleep to be gone")
