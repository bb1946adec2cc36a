"""The README's pictures: `python3 -m bot.dev.screenshots [--out docs/images]`.

Starts a `taskpin dev` session, plays a morning's work through the bot the way people would (forms,
clicks, answers, all over the emulator's Socket Mode), then photographs the page in headless
Chromium: the board with a task in every column, a permission request in its thread, a task in
review with its diff summary, and the Home tab.
"""
from __future__ import annotations

import argparse
import asyncio
import sys
from collections.abc import Callable
from pathlib import Path

from orchestrator import TaskState

from ..blocks.card import STATE_LABEL
from ..emulator.blockkit import iter_elements
from ..ids import ActionId, make_action_id
from . import browser
from .page import DevPage
from .session import APPROVER, OTHER, OWNER, DevOptions, DevSession, scene_agent

OUT = Path("docs/images")
WIDTH, HEIGHT = 1200, 820
SCALE = 1.5   # crisp in a README, still small files
S = TaskState

# (person, title, prompt: its first word tells scene_agent.py what to do, where the task should end up)
TASKS = [
    (OWNER, "Add a CONTRIBUTING guide for new contributors", "guide: write a CONTRIBUTING.md for newcomers", S.COMPLETED),
    (OTHER, "Move CI to the new runners", "fail: move the CI jobs to the new runners", S.FAILED),
    (OWNER, "Document how we review pull requests", "guide: write down our review checklist", S.AWAITING_REVIEW),
    (OWNER, "Migrate the dev database to the new schema", "permission: migrate the dev database to the new schema", S.BLOCKED),
    (OTHER, "Speed up the test suite", "hold: profile the slowest tests and speed them up", S.IN_PROGRESS),
    (APPROVER, "Add dark mode to the settings page", "guide: add a dark theme to the settings page", S.BACKLOG),
    (OTHER, "Upgrade SQLAlchemy to 2.1", "guide: upgrade SQLAlchemy and fix the deprecations", S.BACKLOG),
]


class Scene:
    def __init__(self, session: DevSession) -> None:
        if session.runtime is None:
            raise RuntimeError("start the dev session before playing a scene")
        self.session, self.emu, self.core = session, session.emulator, session.runtime.core
        self.ids: dict[str, int] = {}

    def board(self) -> dict:
        [pinned] = self.emu.pinned(self.session.board_channel)
        return pinned

    async def create(self, user: str, title: str, prompt: str) -> int:
        await self.emu.slash_command(user, "/task", "")
        view = await self.emu.wait_for(lambda: self.emu.views(user), timeout=10)
        await self.emu.submit_view(user, view[-1]["id"], {"title": title, "prompt": prompt})
        tasks = await self.emu.wait_for(lambda: self._with_title(title), timeout=10)
        self.ids[title] = tasks
        return tasks

    async def _with_title(self, title: str):
        return next((t.id for t in await self.core.list_tasks() if t.title == title), None)

    async def click_card(self, user: str, action: ActionId, task_id: int) -> None:
        action_id = make_action_id(action, task_id)

        def shown():
            return any(el.get("action_id") == action_id for _b, el in iter_elements(self.board().get("blocks") or []))
        await self.emu.wait_for(shown, timeout=15)
        await self.emu.click_button(user, self.session.board_channel, self.board()["ts"], action_id, str(task_id))

    async def until(self, task_id: int, *states: TaskState) -> None:
        async def reached():
            return (await self.core.get_task(task_id)).state in states
        await self.emu.wait_for(reached, timeout=30, interval=0.05)

    async def answer_first(self, user: str, task_id: int, label: str) -> None:
        """Click `label` under the task's pending question, in its thread."""
        async def question():
            for message in self._thread_messages():
                for _block, el in iter_elements(message.get("blocks") or []):
                    if el.get("type") == "button" and (el.get("text") or {}).get("text") == label:
                        return message, el
            return None
        message, el = await self.emu.wait_for(question, timeout=15)
        await self.emu.click_button(user, self.session.board_channel, message["ts"], el["action_id"], el["value"])

    def _thread_messages(self) -> list[dict]:
        channel = self.session.board_channel
        return [reply for top in self.emu.messages(channel) for reply in self.emu.thread(channel, top["ts"])]

    async def play(self) -> None:
        for user, title, prompt, goal in TASKS:
            task = await self.create(user, title, prompt)
            if goal is S.BACKLOG:
                continue
            await self.click_card(user, ActionId.DISPATCH, task)
            if goal in (S.COMPLETED, S.AWAITING_REVIEW):
                await self.until(task, S.BLOCKED)
                await self.answer_first(user, task, "Friendly" if goal is S.COMPLETED else "Formal")
                await self.until(task, S.AWAITING_REVIEW)
            if goal is S.COMPLETED:
                await self.click_card(APPROVER, ActionId.APPROVE, task)
            await self.until(task, goal)
        # The board and the threads are edited at a paced rate: wait until they show where every task ended.
        want = {goal: sum(1 for *_, g in TASKS if g is goal) for *_, goal in TASKS}
        columns = [f"{STATE_LABEL[goal]}* ({count})" for goal, count in want.items()]
        await self.emu.wait_for(lambda: all(c in self.emu.text_of(self.board()) for c in columns), timeout=30)
        for title, words in (("Add a CONTRIBUTING guide", "is completed"), ("Document how we review", "ready for review"),
                             ("Move CI", "failed"), ("Migrate the dev database", "wants to use")):
            await self.emu.wait_for(self._thread_says(title, words), timeout=30)
        await asyncio.sleep(1.0)

    def _thread_says(self, title: str, words: str) -> Callable[[], bool]:
        return lambda: words in " ".join(self.emu.text_of(m) for m in self.thread_of(title))

    def thread_of(self, title: str) -> list[dict]:
        channel = self.session.board_channel
        top = next((m for m in self.emu.messages(channel) if "dispatched by" in self.emu.text_of(m)
                    and title in self.emu.text_of(m)), None)
        return self.emu.thread(channel, top["ts"]) if top else []


async def photograph(url: str, out: Path) -> list[Path]:
    from playwright.async_api import async_playwright

    out.mkdir(parents=True, exist_ok=True)  # noqa: ASYNC240 - once, before the browser starts
    written = []
    async with async_playwright() as pw:
        chromium = await browser.launch(pw)
        page = await chromium.new_page(viewport={"width": WIDTH, "height": HEIGHT}, device_scale_factor=SCALE)

        async def shot(name: str, query: str, prepare=None, clip_to: str | None = None) -> None:
            await page.goto(url + query)
            await page.wait_for_function("() => window.taskpinDev && window.taskpinDev.snap")
            if prepare:
                await prepare()
            await page.mouse.move(0, 0)
            await page.wait_for_timeout(1600)          # the flash of a fresh edit fades
            path = out / f"{name}.png"
            clip = None
            if clip_to:
                box = await page.locator(clip_to).bounding_box()
                clip = {"x": 0, "y": 0, "width": WIDTH, "height": box["y"] + box["height"]}
            await page.screenshot(path=str(path), clip=clip)
            written.append(path)

        async def whole_board():
            await page.wait_for_selector("#pinned-list .msg")
            await page.evaluate('() => { document.getElementById("pinned").style.maxHeight = "none"; }')
            height = await page.locator("#pinned").evaluate("node => node.getBoundingClientRect().bottom")
            await page.set_viewport_size({"width": WIDTH, "height": int(height) + 200})
        await shot("board", "?user=U_OWNER", whole_board, clip_to="#pinned")
        await page.set_viewport_size({"width": WIDTH, "height": HEIGHT})

        def thread_and_card(title: str):
            async def prepare():
                message = page.locator("#history-list .msg", has_text="dispatched by").filter(has_text=title)
                await message.locator(".replies").click()
                await page.wait_for_selector("#thread-replies .msg")
                card = page.locator('#pinned-list [data-block-id^="card:"]', has_text=title)
                await page.locator("#pinned").evaluate(
                    "(pane, card) => { pane.scrollTop += card.getBoundingClientRect().top - pane.getBoundingClientRect().top - 34; }", await card.element_handle())
            return prepare

        await shot("permission-request", "?user=U_OWNER", thread_and_card("Migrate the dev database"))
        await shot("review", "?user=U_OWNER", thread_and_card("Document how we review"))

        async def home():
            await page.wait_for_selector('#home-blocks [data-block-id^="card:"]')
        await shot("home", "?user=U_OWNER&view=home", home)
        await chromium.close()
    return written


async def main(out: Path) -> int:
    problem = browser.missing()
    if problem:
        print(f"screenshots: {problem}", file=sys.stderr)
        return 1
    async with DevSession(DevOptions(agents={"demo-agent": scene_agent(0.05)})) as session:
        page = await DevPage(session, port=0).start()
        try:
            scene = Scene(session)
            await scene.play()
            for path in await photograph(page.url, out):
                print(f"wrote {path}")
        finally:
            await page.stop()
    return 0


if __name__ == "__main__":
    parser = argparse.ArgumentParser(prog="python3 -m bot.dev.screenshots", description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=OUT, help=f"where the PNGs go (default {OUT})")
    sys.exit(asyncio.run(main(parser.parse_args().out)))
