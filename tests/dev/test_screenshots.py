"""`python3 -m bot.dev.screenshots` (the README's pictures) runs from a fresh folder and writes
every picture the README shows, as real PNGs of the page."""
from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

from .conftest import need_browser

ROOT = Path(__file__).resolve().parents[2]


def test_the_screenshot_script_writes_every_picture_the_readme_shows(tmp_path):
    need_browser()
    shown = sorted(set(re.findall(r"docs/images/([\w-]+\.png)", (ROOT / "README.md").read_text(encoding="utf-8"))))
    assert shown, "the README shows no pictures"
    done = subprocess.run([sys.executable, "-m", "bot.dev.screenshots", "--out", str(tmp_path / "images")],
                          cwd=tmp_path, capture_output=True, text=True, timeout=170)
    assert done.returncode == 0, done.stderr[-2000:]
    for name in shown:
        data = (tmp_path / "images" / name).read_bytes()
        assert data[:8] == b"\x89PNG\r\n\x1a\n" and len(data) > 10_000, name
