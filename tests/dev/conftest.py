"""Browser fixtures: one `taskpin dev` session (emulator, real bot, agents) and one headless Chromium
page for the whole package; a screenshot of the page goes to a temporary folder when a test fails."""
from __future__ import annotations

import os
import sys
import tempfile
from dataclasses import dataclass, field
from pathlib import Path

import pytest
import pytest_asyncio

from bot.demo import demo_agent
from bot.dev import browser
from bot.dev.page import DevPage
from bot.dev.session import DevOptions, DevSession, scene_agent

SHOTS = Path(tempfile.gettempdir()) / "taskpin-dev-test-screenshots"


def need_browser() -> None:
    """Skip (fail in CI) when Chromium or Playwright is missing, saying how to install them.
    Callable at a test module's top, before it imports Playwright."""
    problem = browser.missing()
    if problem:
        if os.environ.get("CI"):
            pytest.fail(f"browser tests: {problem}", pytrace=False)
        pytest.skip(f"browser tests: {problem}", allow_module_level=True)


@dataclass
class Dev:
    session: DevSession
    server: DevPage
    page: object = None
    page_errors: list = field(default_factory=list)   # uncaught errors in the page's scripts
    dialogs: list = field(default_factory=list)       # alert()/confirm() the page opened

    @property
    def emu(self):
        return self.session.emu


@pytest.hookimpl(wrapper=True, tryfirst=True)
def pytest_runtest_makereport(item, call):
    report = yield
    setattr(item, f"report_{report.when}", report)
    return report


@pytest_asyncio.fixture(scope="package", loop_scope="package")
async def dev():
    need_browser()
    from playwright.async_api import async_playwright

    agents = {"demo-agent": demo_agent(0.05), "scene-agent": scene_agent(0.05)}
    async with DevSession(DevOptions(agents=agents)) as session:
        server = await DevPage(session, port=0).start()
        try:
            async with async_playwright() as pw:
                chromium = await browser.launch(pw)
                handle = Dev(session, server)
                handle.page = await chromium.new_page(viewport={"width": 1400, "height": 900})
                handle.page.set_default_timeout(15_000)
                handle.page.on("pageerror", lambda error: handle.page_errors.append(str(error)))
                handle.page.on("dialog", lambda d: (handle.dialogs.append(d.message), d.dismiss()))
                await handle.page.goto(server.url)
                yield handle
                await chromium.close()
        finally:
            await server.stop()


@pytest_asyncio.fixture(loop_scope="package")
async def page(dev, request):
    """The shared page, as alice in the channel; screenshotted when the test fails."""
    await dev.page.goto(dev.server.url + "?user=U_OWNER")
    await dev.page.wait_for_selector("#pinned-list .msg")
    yield dev.page
    report = getattr(request.node, "report_call", None)
    if report is not None and report.failed:
        SHOTS.mkdir(exist_ok=True)
        path = SHOTS / f"{request.node.name}.png"
        await dev.page.screenshot(path=str(path), full_page=True)
        print(f"screenshot of the page: {path}", file=sys.stderr)
    assert not dev.page_errors, f"the page's scripts failed: {dev.page_errors}"
