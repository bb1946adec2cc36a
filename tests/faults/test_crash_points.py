"""kill -9 of a real `taskpin run` process at the moment Slack has accepted a message and taskpin
has not yet stored its ts. After the restart, taskpin finds the message by the marker in its
metadata (conversations.history / conversations.replies) instead of posting it a second time."""
from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
from pathlib import Path

import pytest

from bot.emulator.blockkit import iter_elements
from bot.ids import ActionId, make_action_id
from bot.threads import thread_marker
from tests.cli_helpers import free_port
from tests.core.helpers import AGENT
from tests.e2e.conftest import OWNER
from tests.e2e.scenario import ASKING_AGENT

from .conftest import FAST_SLACK

ROOT = Path(__file__).resolve().parents[2]
QUESTION = "Which greeting"
BOARD = "C0KILLTEST"      # `taskpin run` checks that the board channel looks like a channel id


class TaskpinProcess:
    """`python -m bot.cli run` against the emulator, its log in a file."""

    def __init__(self, emu, tmp_path: Path, repo: Path, steps: list[dict], *, resume: bool):
        self.emu, self.tmp = emu, tmp_path
        self.config = tmp_path / "taskpin.toml"
        self.config.write_text("\n".join([
            "[repos.app]", f"path = {json.dumps(str(repo))}", 'base_branch = "main"', "",
            "[agents.bot]", 'kind = "command"', f"command = [{json.dumps(sys.executable)}, {json.dumps(AGENT)}]",
            "stop_grace_s = 1", f"resume = {'true' if resume else 'false'}", "",
            "[agents.bot.env]", f"SCRIPTED_AGENT_SCRIPT = {json.dumps(json.dumps(steps))}", ""]))
        self.runs: list[tuple[subprocess.Popen, Path]] = []

    def start(self, crash_at: str | None = None) -> subprocess.Popen:
        env = {k: v for k, v in os.environ.items() if not k.startswith(("TASKPIN_", "SLACK_"))}
        env.update(FAST_SLACK, PYTHONPATH=str(ROOT), SLACK_BOT_TOKEN=self.emu.bot_token,
                   SLACK_APP_TOKEN=self.emu.app_token, SLACK_API_URL=self.emu.api_url,
                   TASKPIN_BOARD_CHANNEL=BOARD, TASKPIN_HTTP_HOST="127.0.0.1", TASKPIN_HTTP_PORT=str(free_port()),
                   TASKPIN_CONFIG=str(self.config), TASKPIN_DATABASE_URL=f"sqlite+aiosqlite:///{self.tmp / 'tp.db'}",
                   TASKPIN_WORKSPACES_DIR=str(self.tmp / "worktrees"), TASKPIN_LOG_DIR=str(self.tmp / "logs"),
                   TASKPIN_BOARD_SYNC_INTERVAL_S="0.2", TASKPIN_MAX_ATTEMPTS="1")
        if crash_at:
            env["TASKPIN_CRASH_AT"] = crash_at
        log = self.tmp / f"run{len(self.runs)}.log"
        proc = subprocess.Popen([sys.executable, "-m", "bot.cli", "run"], cwd=self.tmp, env=env,
                                stdout=log.open("w"), stderr=subprocess.STDOUT)
        self.runs.append((proc, log))
        return proc

    def alive(self) -> bool:
        proc, _ = self.runs[-1]
        if proc.poll() is not None:
            raise AssertionError(f"taskpin exited with {proc.returncode}:\n{self.logs()}")
        return True

    async def wait_exit(self, proc: subprocess.Popen, timeout: float = 30) -> int:
        await self.emu.wait_for(lambda: proc.poll() is not None, timeout=timeout, interval=0.05)
        return proc.returncode

    def stop_all(self) -> None:
        for proc, _ in self.runs:
            if proc.poll() is None:
                proc.send_signal(signal.SIGTERM)
                try:
                    proc.wait(15)
                except subprocess.TimeoutExpired:
                    proc.kill()

    def logs(self) -> str:
        return "\n".join(log.read_text() for _, log in self.runs)


@pytest.fixture
async def emu(emu):
    emu.add_channel(BOARD, "taskpin-kill")
    return emu


async def _connected(emu, tp: TaskpinProcess, opened_before: int) -> None:
    await emu.wait_for(lambda: tp.alive() and emu.socket_connections > opened_before and emu.dispatcher.socket.live,
                       timeout=40)
    await emu.wait_for(lambda: emu.pinned(BOARD), timeout=20)


def thread_of(emu, task_id: int) -> tuple[str, list[dict]]:
    [root] = roots(emu, task_id)
    return root["ts"], emu.thread(BOARD, root["ts"])


def roots(emu, task_id: int) -> list[dict]:
    return [m for m in emu.messages(BOARD) if m.get("metadata") == thread_marker(task_id)]


async def _create_and_dispatch(emu) -> int:
    await emu.slash_command(OWNER, "/task", "Survive a kill -9", channel=BOARD)
    action_id = make_action_id(ActionId.DISPATCH, 1)
    board = await emu.wait_for(lambda: next((m for m in emu.pinned(BOARD) if any(
        el.get("action_id") == action_id for _b, el in iter_elements(m.get("blocks") or []))), None), timeout=20)
    await emu.click_button(OWNER, BOARD, board["ts"], action_id, "1")
    return 1


async def test_kill_9_right_after_the_thread_root_was_posted_gives_one_thread(emu, tmp_path, git_repo):
    tp = TaskpinProcess(emu, tmp_path, git_repo, ASKING_AGENT, resume=False)
    try:
        crashing = tp.start(crash_at="outbox_posted:thread_root")
        await _connected(emu, tp, 0)
        # Posts fail for a while, so the agent's question is written behind the root; when Slack
        # takes the root, taskpin dies before it can store its ts.
        emu.faults.http_error("chat.postMessage", 503, body="html", seconds=3)
        task_id = await _create_and_dispatch(emu)
        assert await tp.wait_exit(crashing) == -signal.SIGKILL, tp.logs()
        assert len(roots(emu, task_id)) == 1      # Slack took it; taskpin never stored its ts
        assert not thread_of(emu, task_id)[1]

        opened = emu.socket_connections
        tp.start()
        await _connected(emu, tp, opened)
        # The question goes into the one thread there is; the interrupted task fails there too.
        await emu.wait_for(lambda: any("failed" in emu.text_of(m) for m in thread_of(emu, task_id)[1]), timeout=40)
        texts = [emu.text_of(m) for m in thread_of(emu, task_id)[1]]
        assert sum(QUESTION in t for t in texts) == 1, texts
        assert len(roots(emu, task_id)) == 1, [emu.text_of(m) for m in roots(emu, task_id)]
        assert emu.count("conversations.history"), "the root was not looked up"
        assert "Traceback" not in tp.logs(), tp.logs()
    finally:
        tp.stop_all()


async def test_kill_9_right_after_the_question_was_posted_keeps_one_question_and_closes_it(emu, tmp_path, git_repo):
    tp = TaskpinProcess(emu, tmp_path, git_repo, ASKING_AGENT, resume=False)
    try:
        crashing = tp.start(crash_at="outbox_posted:intervention")
        await _connected(emu, tp, 0)
        task_id = await _create_and_dispatch(emu)
        assert await tp.wait_exit(crashing) == -signal.SIGKILL, tp.logs()
        [question] = [m for m in thread_of(emu, task_id)[1] if QUESTION in emu.text_of(m)]
        assert [b for b in question.get("blocks", []) if b.get("type") == "actions"], "the question has buttons"

        opened = emu.socket_connections
        tp.start()
        await _connected(emu, tp, opened)
        # The agent cannot resume: the task fails in the thread, and the question (found again,
        # not posted twice) is edited to say it was closed, its buttons gone.
        await emu.wait_for(lambda: any("failed" in emu.text_of(m) for m in thread_of(emu, task_id)[1]), timeout=40)
        await emu.wait_for(lambda: not [b for b in emu.message(BOARD, question["ts"]).get("blocks", [])
                                        if b.get("type") == "actions"], timeout=20)
        questions = [m for m in thread_of(emu, task_id)[1] if QUESTION in emu.text_of(m)]
        assert len(questions) == 1, [emu.text_of(m) for m in questions]
        assert len(roots(emu, task_id)) == 1
        assert emu.count("conversations.replies"), "the question was not looked up"
        assert "Traceback" not in tp.logs(), tp.logs()
    finally:
        tp.stop_all()
