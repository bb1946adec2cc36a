"""`taskpin demo` shows the whole flow offline, as a newcomer runs it."""
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def test_demo_runs_the_whole_flow_offline(tmp_path):
    result = subprocess.run([sys.executable, "-m", "bot.cli", "demo", "--fast"], cwd=tmp_path, capture_output=True,
                            text=True, timeout=120, env={"PATH": "/usr/bin:/bin", "PYTHONPATH": str(ROOT),
                                                         "HOME": str(tmp_path)})
    out = result.stdout
    assert result.returncode == 0, result.stderr[-3000:]
    steps = ["pinned board", "/task Add a CONTRIBUTING guide", "dispatched by @alice",
             "Which tone should CONTRIBUTING.md take?", "[Friendly] [Formal]",
             "approval policy answered 1 request without asking", "allowed by `Bash(ls *)` (repos.demo)",
             "after #1, and dispatches it", "waits for #1",
             "your reply was", "not forwarded", "@alice chose Friendly", "ready for review", "+4 −0 · 1 file",
             "[Approve] [Request changes] [Reject]", "is completed",
             "taskpin dispatched it by itself", "+2 −0 · 1 file: `README.md`", "Completed (1)"]
    positions = [out.find(step) for step in steps]
    assert all(p >= 0 for p in positions), [s for s, p in zip(steps, positions) if p < 0]
    assert positions == sorted(positions), list(zip(steps, positions))
    assert "Traceback" not in result.stderr
    assert not list(tmp_path.glob("*.db")), "the demo leaves nothing behind"
