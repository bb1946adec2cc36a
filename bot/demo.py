"""`taskpin demo`: the whole flow offline, printed as text.

A local Slack emulator, a throwaway git repository, the demo agent and the real bot: a
user creates a task, dispatches it, the repository's approval policy allows the agent's
`ls docs` without asking, the agent asks a question in the task thread, a
stranger's reply is refused, the owner answers, the work lands in review, and is approved;
a second task dispatched "after #1" waits, then starts by itself when #1 completes.
"""
from __future__ import annotations

import asyncio
import re
import sys
import tempfile
import textwrap
from pathlib import Path

import git

from orchestrator import Settings, TaskState

from .emulator import SlackEmulator
from .ids import ActionId, make_action_id
from .runtime import Runtime
from .settings import SlackSettings

BOARD = "C_BOARD"
OWNER, STRANGER = "U_OWNER", "U_OTHER"
NAMES = {OWNER: "alice", STRANGER: "bob"}
WIDTH = 78


class Narrator:
    def __init__(self, emu: SlackEmulator, pause: float):
        self.emu, self.pause = emu, pause

    async def step(self, text: str) -> None:
        print(f"\n\033[1m▶ {text}\033[0m")
        await asyncio.sleep(self.pause)

    def show(self, title: str, message: dict | None) -> None:
        print(f"┌─ {title} " + "─" * max(0, WIDTH - len(title) - 4))
        for line in _lines(message) if message else ["(nothing)"]:
            for part in textwrap.wrap(_plain(line), WIDTH - 4) or [""]:
                print(f"│ {part}")
        print("└" + "─" * (WIDTH - 1))

    def board_text(self) -> str:
        return _plain(self.emu.text_of(self.board()))

    def board(self) -> dict:
        [pinned] = self.emu.pinned(BOARD)   # a copy of the board message as it is now
        return pinned

    def show_board(self) -> None:
        self.show("📌 pinned board in #taskpin", self.board())

    def thread(self) -> tuple[str, list[dict]]:
        top = next(m for m in self.emu.messages(BOARD) if "dispatched by" in self.emu.text_of(m))
        return top["ts"], [top, *self.emu.thread(BOARD, top["ts"])]

    def show_thread(self, since: int = 0) -> int:
        _, messages = self.thread()
        for message in messages[since:]:
            self.show("🧵 task thread" if message is messages[0] else "  ↳ reply", message)
        return len(messages)

    def show_ephemeral(self, user: str, since: int) -> int:
        seen = self.emu.ephemerals(user=user)
        for message in seen[since:]:
            self.show(f"👁 only visible to {NAMES[user]}", message)
        return len(seen)


def _lines(message: dict) -> list[str]:
    """A message as a person reads it: who wrote it, its blocks, its buttons in brackets."""
    lines = [f"{NAMES[message['user']]}: {message.get('text', '')}"] if message.get("user") in NAMES else []
    for block in message.get("blocks") or ([] if lines else [{"type": "section", "text": {"text": message.get("text", "")}}]):
        kind = block.get("type")
        if kind in ("header", "section"):
            lines += (block.get("text") or {}).get("text", "").splitlines()
            lines += [f.get("text", "") for f in block.get("fields", [])]
        elif kind == "context":
            lines.append(" · ".join(e.get("text", "") for e in block.get("elements", [])))
        elif kind == "actions":
            lines.append(" ".join(f"[{(e.get('text') or {}).get('text', e.get('type'))}]"
                                  for e in block.get("elements", [])))
        elif kind == "divider":
            lines.append("─" * 20)
    return lines


def _plain(line: str) -> str:
    """Slack mrkdwn to terminal text: entities decoded, mentions readable."""
    for user, name in NAMES.items():
        line = line.replace(f"<@{user}>", f"@{name}")
    line = re.sub(r"<(?:https?|slack)://[^|>]+\|([^>]+)>", r"\1", line)
    # bold markers go; a * inside `code` (a policy rule's glob) stays
    line = "`".join(part if i % 2 else part.replace("*", "") for i, part in enumerate(line.split("`")))
    return line.replace("&lt;", "<").replace("&gt;", ">").replace("&amp;", "&")


def demo_repo(root: Path) -> Path:
    """A throwaway git repository with one commit on `main`, under `root`."""
    path = root / "demo-repo"
    repo = git.Repo.init(path, initial_branch="main")
    (path / "README.md").write_text("# demo\n\nA project that needs a contributing guide.\n")
    repo.index.add(["README.md"])
    actor = git.Actor("demo", "demo@example.com")
    repo.index.commit("initial commit", author=actor, committer=actor)
    return path


def demo_agent(pause: float, *, list_docs: bool = False, mode: str = "") -> dict:
    """The demo agent's configuration: asks one question, writes CONTRIBUTING.md; with
    `list_docs`, first asks to run `ls docs` (which the demo's policy allows); mode
    "link-guide": only adds a line to README.md."""
    argv = [sys.executable, str(Path(__file__).with_name("demo_agent.py")), str(pause)]
    return {"kind": "command", "command": argv + (["list-docs"] if list_docs else []) + ([mode] if mode else [])}


def emulator_slack_settings(emu: SlackEmulator) -> SlackSettings:
    """The bot's Slack settings for a local emulator: Socket Mode, a quick board."""
    return SlackSettings(
                         _env_file=None, SLACK_BOT_TOKEN=emu.bot_token, SLACK_APP_TOKEN=emu.app_token,
                         SLACK_API_URL=emu.api_url, TASKPIN_BOARD_CHANNEL=BOARD, TASKPIN_HTTP_HOST="127.0.0.1",
                         TASKPIN_HTTP_PORT=0, TASKPIN_BOARD_SYNC_INTERVAL_S=0.3)


async def run_demo(fast: bool = False) -> int:
    pause = 0.0 if fast else 1.2
    with tempfile.TemporaryDirectory(prefix="taskpin-demo-") as tmp:
        root = Path(tmp)
        async with SlackEmulator(rate_limits=True) as emu:
            settings = Settings(
                _env_file=None, database_url=f"sqlite+aiosqlite:///{root / 'demo.db'}",
                workspaces_dir=root / "worktrees", log_dir=root / "logs",
                repos={"demo": {"path": str(demo_repo(root)), "base_branch": "main",
                                "policy": ["allow Read", "allow Bash(ls *)", "deny Bash(rm -rf *)"]}},
                agents={"demo-agent": demo_agent(0.1 if fast else 0.8, list_docs=True),
                        "demo-helper": demo_agent(0.1, mode="link-guide")},
                default_repo="demo", default_agent="demo-agent")
            slack = emulator_slack_settings(emu).model_copy(update={"output_summary_interval_s": 0.3})
            runtime = await Runtime.start(settings, slack)
            try:
                await emu.wait_socket()
                await _story(Narrator(emu, pause), emu, runtime)
            finally:
                await runtime.close()
    print("\nThat was taskpin. Connect it to your Slack workspace: see docs/slack-setup.md.")
    return 0


async def _story(n: Narrator, emu: SlackEmulator, runtime: Runtime) -> None:
    core = runtime.core
    print("taskpin demo: a local Slack emulator, a throwaway git repo, a demo agent and the real bot.")
    await n.step("The bot pinned its board in #taskpin")
    n.show_board()

    await n.step("alice types: /task Add a CONTRIBUTING guide for new contributors")
    await emu.slash_command(OWNER, "/task", "Add a CONTRIBUTING guide for new contributors")
    # The command is acked before it acts: wait for its confirmation, then for the task itself.
    await emu.wait_for(lambda: emu.ephemerals(user=OWNER), timeout=10)
    seen_owner = n.show_ephemeral(OWNER, 0)
    task = await _first_task(core)
    await emu.wait_for(lambda: "CONTRIBUTING" in n.board_text(), timeout=5)
    n.show_board()

    await n.step("alice clicks Dispatch on the card")
    await emu.click_button(OWNER, BOARD, n.board()["ts"], make_action_id(ActionId.DISPATCH, task.id), str(task.id))
    await _until_state(core, task.id, TaskState.BLOCKED)
    # The agent's `ls docs` was allowed by the repository's policy: only the digest says so.
    await emu.wait_for(lambda: any("approval policy" in emu.text_of(m) for m in n.thread()[1]), timeout=10)
    await emu.wait_for(lambda: len(n.thread()[1]) >= 3, timeout=10)
    seen_thread = n.show_thread()
    await emu.wait_for(lambda: "Blocked (1)" in n.board_text(), timeout=5)
    n.show_board()

    await n.step(f"alice types: /task agent=demo-helper Link the guide from the README after #{task.id}, "
                 "and dispatches it")
    await emu.slash_command(OWNER, "/task", f"agent=demo-helper Link the guide from the README after #{task.id}")
    follow = await _new_task(core, after=task.id)
    await emu.wait_for(lambda: f"#{follow.id}" in n.board_text(), timeout=5)
    await emu.click_button(OWNER, BOARD, n.board()["ts"], make_action_id(ActionId.DISPATCH, follow.id),
                           str(follow.id))
    await _until_state(core, follow.id, TaskState.WAITING)
    await emu.wait_for(lambda: f"waits for #{task.id}" in n.board_text(), timeout=5)
    n.show_board()

    thread_ts, _ = n.thread()
    await n.step("bob, who does not own the task, replies in the thread: \"formal!\"")
    await emu.user_message(STRANGER, BOARD, "formal!", thread_ts=thread_ts)
    await emu.wait_for(lambda: emu.ephemerals(user=STRANGER), timeout=5)
    n.show_ephemeral(STRANGER, 0)

    await n.step("alice clicks \"Friendly\" under the question")
    _, messages = n.thread()
    question = next(m for m in messages if "Which tone" in emu.text_of(m))
    await _click_option(emu, question, "Friendly")
    await _until_state(core, task.id, TaskState.AWAITING_REVIEW)
    await emu.wait_for(lambda: "ready for review" in emu.text_of(n.thread()[1][-1]), timeout=10)
    n.show("  ↳ the question, edited", emu.message(BOARD, question["ts"]))
    seen_thread = n.show_thread(seen_thread)
    await emu.wait_for(lambda: "Awaiting review (1)" in n.board_text(), timeout=5)
    n.show_board()

    await n.step("alice clicks Approve")
    await emu.click_button(OWNER, BOARD, n.board()["ts"], make_action_id(ActionId.APPROVE, task.id), str(task.id))
    await _until_state(core, task.id, TaskState.COMPLETED)
    await emu.wait_for(lambda: "completed" in emu.text_of(n.thread()[1][-1]), timeout=10)
    n.show_thread(seen_thread)
    await emu.wait_for(lambda: "Completed (1)" in n.board_text(), timeout=5)
    await n.step(f"#{task.id} completed, the last task #{follow.id} waited for: taskpin dispatched it by itself")
    await _until_state(core, follow.id, TaskState.AWAITING_REVIEW)
    await emu.wait_for(lambda: "Awaiting review (1)" in n.board_text(), timeout=5)
    n.show_board()
    n.show_ephemeral(OWNER, seen_owner)


async def _first_task(core):
    async def created():
        while not (found := await core.list_tasks()):  # noqa: ASYNC110 - the demo narrates by polling the core it drives
            await asyncio.sleep(0.05)
        return found[-1]
    return await asyncio.wait_for(created(), 10)


async def _new_task(core, after: int):
    async def created():
        while not (found := [t for t in await core.list_tasks() if after in t.depends_on]):  # noqa: ASYNC110 - the demo narrates by polling the core it drives
            await asyncio.sleep(0.05)
        return found[0]
    return await asyncio.wait_for(created(), 10)


async def _click_option(emu: SlackEmulator, message: dict, label: str):
    for block in message.get("blocks", []):
        for element in block.get("elements", []) if block.get("type") == "actions" else []:
            if element.get("text", {}).get("text") == label:
                return await emu.click_button(OWNER, BOARD, message["ts"], element["action_id"], element["value"])
    raise RuntimeError(f"no {label!r} button on the question")


async def _until_state(core, task_id: int, state: TaskState, timeout: float = 20) -> None:
    async def reached():
        while (await core.get_task(task_id)).state is not state:  # noqa: ASYNC110 - the demo narrates by polling the core it drives
            await asyncio.sleep(0.05)
    await asyncio.wait_for(reached(), timeout)
