"""The Slack emulator ships with taskpin (the demo and `taskpin dev` use it) but serving Slack
never loads it, and importing it does nothing by itself; package data names real files."""
from __future__ import annotations

import subprocess
import sys
import tomllib

from .imports import ROOT

PROBE = """
import logging, os, sys, threading
cwd = set(os.listdir("."))
import bot.runtime, bot.cli, bot.app
assert not [m for m in sys.modules if m.startswith("bot.emulator")], "serving Slack loaded the emulator"
import bot.emulator, bot.emulator.server
assert threading.active_count() == 1, threading.enumerate()
assert logging.getLogger().handlers == [], logging.getLogger().handlers
assert set(os.listdir(".")) == cwd, "importing wrote files"
import asyncio
try:
    asyncio.get_running_loop()
except RuntimeError:
    pass
else:
    raise AssertionError("an event loop is running")
print("clean")
"""


def test_the_emulator_is_not_loaded_to_serve_slack_and_importing_it_has_no_side_effects(tmp_path):
    result = subprocess.run([sys.executable, "-c", PROBE], cwd=tmp_path, capture_output=True, text=True,
                            env={"PYTHONPATH": str(ROOT), "PATH": "/usr/bin:/bin"}, timeout=60)
    assert result.returncode == 0 and result.stdout.strip() == "clean", result.stderr


def test_package_data_names_files_that_exist():
    data = tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["setuptools"]["package-data"]
    for package, patterns in data.items():
        for pattern in patterns:
            assert list((ROOT / package).glob(pattern)), f"{package}/{pattern} matches no file"
