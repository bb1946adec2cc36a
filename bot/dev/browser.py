"""Headless Chromium for the pictures and the browser tests: Debian's /usr/bin/chromium, driven by
Playwright. Nothing is downloaded: Playwright's own browser downloads are never used."""
from __future__ import annotations

import importlib.util
import os
import shutil
from pathlib import Path

CHROMIUM_ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
                 "--disable-component-update", "--disable-sync", "--no-first-run"]
HOW_TO_INSTALL = ("install Chromium with `apt-get install -y chromium` (or set TASKPIN_CHROMIUM to a Chromium "
                  "binary) and Playwright with `pip install playwright`; never `playwright install`")


def chromium_path() -> Path | None:
    given = os.environ.get("TASKPIN_CHROMIUM")
    for candidate in ([given] if given else []) + ["/usr/bin/chromium", shutil.which("chromium") or ""]:
        if candidate and Path(candidate).is_file() and os.access(candidate, os.X_OK):
            return Path(candidate)
    return None


def missing() -> str | None:
    """Why the browser cannot run here, with how to fix it; None when it can."""
    lacking = []
    if chromium_path() is None:
        lacking.append("Chromium")
    if importlib.util.find_spec("playwright") is None:
        lacking.append("Playwright")
    return f"{' and '.join(lacking)} not found: {HOW_TO_INSTALL}" if lacking else None


async def launch(playwright):
    """A headless Chromium browser from `async_playwright()`."""
    return await playwright.chromium.launch(executable_path=str(chromium_path()), args=CHROMIUM_ARGS)
