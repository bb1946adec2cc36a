"""`taskpin check`, `taskpin run` with a broken configuration, `taskpin db upgrade`: as a user runs them."""
from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def taskpin(cwd: Path, *args: str, env: dict | None = None, timeout: float = 60) -> subprocess.CompletedProcess:
    base = {k: v for k, v in os.environ.items() if not k.startswith(("TASKPIN_", "SLACK_"))}
    return subprocess.run([sys.executable, "-m", "bot.cli", *args], cwd=cwd, capture_output=True, text=True,
                          timeout=timeout, env={**base, "PYTHONPATH": str(ROOT), **(env or {})})


def write_toml(path: Path, body: str) -> Path:
    path.write_text(body)
    return path


def test_check_explains_every_problem_without_a_traceback(tmp_path, git_repo):
    not_a_repo = tmp_path / "plain"
    not_a_repo.mkdir()
    write_toml(tmp_path / "taskpin.toml", f"""
[repos.plain]
path = "{not_a_repo}"

[repos.app]
path = "{git_repo}"
base_branch = "release"

[agents.ghost]
kind = "command"
command = ["definitely-not-installed-agent"]

[agents.weird]
kind = "telepathy"
""")
    env = {"TASKPIN_DATABASE_URL": "postgresql+asyncpg://nobody@127.0.0.1:1/none",
           "SLACK_BOT_TOKEN": "xoxp-user-token-not-bot", "TASKPIN_DEFAULT_AGENT": "nope"}
    result = taskpin(tmp_path, "check", env=env)
    out = result.stderr
    assert result.returncode == 1, out
    assert "Traceback" not in out + result.stdout
    for expected in ["repos.plain", "not a git repository", "repos.app", "release",
                     "agents.ghost", "definitely-not-installed-agent", "agents.weird", "unknown agent kind",
                     "TASKPIN_DATABASE_URL", "unreachable", "SLACK_BOT_TOKEN", "xoxb-", "TASKPIN_BOARD_CHANNEL",
                     "TASKPIN_DEFAULT_AGENT", "fix:"]:
        assert expected in out, f"{expected!r} missing from:\n{out}"
    assert "xoxp-user-token-not-bot" not in out   # secrets never echo


def test_bad_values_and_a_broken_toml_are_explained(tmp_path):
    write_toml(tmp_path / "broken.toml", "[repos.app\npath = 1")
    result = taskpin(tmp_path, "check", env={"TASKPIN_CONFIG": str(tmp_path / "broken.toml")})
    assert result.returncode == 1 and "TASKPIN_CONFIG" in result.stderr and "Traceback" not in result.stderr
    result = taskpin(tmp_path, "check", env={"TASKPIN_MAX_CONCURRENT_SESSIONS": "lots"})
    assert result.returncode == 1 and "TASKPIN_MAX_CONCURRENT_SESSIONS" in result.stderr
    assert "Traceback" not in result.stderr


def test_run_with_a_broken_configuration_says_why_and_exits_1(tmp_path):
    result = taskpin(tmp_path, "run")
    assert result.returncode == 1
    assert "SLACK_BOT_TOKEN" in result.stderr and "not starting" in result.stderr
    assert "Traceback" not in result.stderr + result.stdout


def test_check_passes_on_a_good_configuration(tmp_path, git_repo):
    write_toml(tmp_path / "taskpin.toml", f"""
[repos.app]
path = "{git_repo}"
base_branch = "main"
on_approve = "merge"

[agents.script]
kind = "command"
command = ["{sys.executable}", "-c", "print(1)"]
""")
    env = {"SLACK_BOT_TOKEN": "xoxb-1-2-abc", "SLACK_APP_TOKEN": "xapp-1-abc", "TASKPIN_BOARD_CHANNEL": "C0123"}
    result = taskpin(tmp_path, "check", "--offline", env=env)    # asking Slack: tests/test_check_slack.py
    assert result.returncode == 0, result.stderr
    assert "configuration OK" in result.stdout


def test_db_upgrade_creates_the_schema(tmp_path):
    db = tmp_path / "t.db"
    result = taskpin(tmp_path, "db", "upgrade", env={"TASKPIN_DATABASE_URL": f"sqlite+aiosqlite:///{db}"})
    assert result.returncode == 0, result.stderr
    assert "database schema at revision 0006" in result.stdout and db.exists()
