"""Headless Chromium for the pictures and the browser tests: Debian's /usr/bin/chromium, driven by
Playwright. Nothing is downloaded: Playwright's own browser downloads are never used."""
from __future__ import annotations

import importlib.util
import os
import shutil
from pathlib import Path

CHROMIUM_ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
                 "--disable-component-update", "--disable-sync", "--no-first-run"]
INSTALL_CHROMIUM = "apt-get install -y chromium (or set TASKPIN_CHROMIUM to a Chromium binary)"
INSTALL_PLAYWRIGHT = "pip install playwright (its browser download, `playwright install`, is not needed)"


def chromium_path() -> Path | None:
    given = os.environ.get("TASKPIN_CHROMIUM")
    for candidate in ([given] if given else []) + ["/usr/bin/chromium", shutil.which("chromium") or ""]:
        if candidate and Path(candidate).is_file() and os.access(candidate, os.X_OK):
            return Path(candidate)
    return None


def missing() -> str | None:
    """Why the browser cannot run here, with how to fix it; None when it can."""
    fixes = []
    if chromium_path() is None:
        fixes.append(f"Chromium is missing: {INSTALL_CHROMIUM}")
    if importlib.util.find_spec("playwright") is None:
        fixes.append(f"Playwright is missing: {INSTALL_PLAYWRIGHT}")
    return "; ".join(fixes) or None


async def launch(playwright):
    """A headless Chromium browser from `async_playwright()`."""
    return await playwright.chromium.launch(executable_path=str(chromium_path()), args=CHROMIUM_ARGS)
