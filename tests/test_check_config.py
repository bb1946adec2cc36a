"""Configuration mistakes are errors (issue 8, item 2): `taskpin` run as a user runs it, in a folder
holding the configuration; each mistake is one problem with its fix, never a traceback."""
from __future__ import annotations

import socket
import sys

import pytest
from dotenv import dotenv_values

from bot.settings import PLACEHOLDERS, SlackSettings
from orchestrator.config import Settings
from tests.cli_helpers import ROOT, run_taskpin, write_config

OFFLINE_SLACK = {"SLACK_BOT_TOKEN": "xoxb-1-2-abc", "SLACK_APP_TOKEN": "xapp-1-abc",
                 "TASKPIN_BOARD_CHANNEL": "C0123ABCD"}


def assert_clean(result) -> None:
    assert "Traceback" not in result.output, result.output


@pytest.fixture
def folder(tmp_path, git_repo):
    work = tmp_path / "work"
    work.mkdir()
    return work


async def test_misspelt_toml_keys_name_the_closest_setting(folder, git_repo):
    write_config(folder, git_repo, extra='borad_channel = "C0123ABCD"\nmax_concurent_sessions = 2\ndefualt_agent = "x"')
    result = await run_taskpin(folder, "check", "--offline", env=OFFLINE_SLACK)
    assert result.returncode == 1
    assert_clean(result)
    for wrong, right in [("borad_channel", "board_channel"), ("max_concurent_sessions", "max_concurrent_sessions"),
                         ("defualt_agent", "default_agent")]:
        assert f"unknown key {wrong!r} (did you mean {right!r}?)" in result.stderr, result.stderr


async def test_every_setting_may_go_in_taskpin_toml(folder, git_repo):
    """The file's header says so: board_channel, the tokens, the port... all read from it."""
    write_config(folder, git_repo, extra='board_channel = "C0TOML0001"\nslack_bot_token = "xoxb-from-toml"\n'
                                         'slack_app_token = "xapp-from-toml"\nhttp_port = 3999\n'
                                         'slack_workspace_url = "https://acme.slack.com"')
    result = await run_taskpin(folder, "check", "--offline")
    assert result.returncode == 0, result.output


def test_precedence_is_environment_then_dotenv_then_toml(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    for name in ("TASKPIN_HTTP_PORT", "TASKPIN_BOARD_CHANNEL", "TASKPIN_MAX_ATTEMPTS", "TASKPIN_CONFIG"):
        monkeypatch.delenv(name, raising=False)
    (tmp_path / "taskpin.toml").write_text('board_channel = "C0TOML"\nhttp_port = 1001\nmax_attempts = 7\n'
                                           'stop_grace_s = 9\n')
    (tmp_path / ".env").write_text("TASKPIN_HTTP_PORT=1002\nTASKPIN_MAX_ATTEMPTS=8\n")
    monkeypatch.setenv("TASKPIN_MAX_ATTEMPTS", "9")
    slack, core = SlackSettings(), Settings()
    assert (slack.board_channel, slack.http_port) == ("C0TOML", 1002)
    assert (core.max_attempts, core.stop_grace_s) == (9, 9)


async def test_relative_paths_in_taskpin_toml_are_relative_to_its_folder(tmp_path, git_repo):
    conf = tmp_path / "conf"
    conf.mkdir()
    (conf / "taskpin.toml").write_text(f'''
workspaces_dir = "state/worktrees"
log_dir = "state/logs"
database_url = "sqlite+aiosqlite:///state/taskpin.db"
[repos.app]
path = "../{git_repo.name}"
[agents.script]
kind = "command"
command = ["{sys.executable}", "-c", "print(1)"]
''')
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    (conf / "state").mkdir()
    result = await run_taskpin(elsewhere, "check", "--offline", env={**OFFLINE_SLACK, "TASKPIN_CONFIG": "../conf/taskpin.toml"})
    assert result.returncode == 0, result.output
    core = Settings(_env_file=None, config=conf / "taskpin.toml")
    assert core.repos["app"].path == git_repo
    assert core.workspaces_dir == conf / "state" / "worktrees" and core.log_dir == conf / "state" / "logs"
    assert core.database_url == f"sqlite+aiosqlite:///{conf / 'state' / 'taskpin.db'}"


async def test_unknown_taskpin_variables_in_the_environment_and_dotenv(folder, git_repo):
    write_config(folder, git_repo)
    (folder / ".env").write_text("TASKPIN_BORAD_CHANNEL=C0123ABCD\nSLACK_BOT_TOKN=xoxb-1-2-secret\n")
    env = {**OFFLINE_SLACK, "TASKPIN_MAX_CONCURENT_SESSIONS": "3",
           # not settings, but legitimate: never reported
           "TASKPIN_CRASH_AT": "nowhere", "TASKPIN_AGENTS_PREFIX": "/tmp/x", "TASKPIN_TEST_PG": "postgresql://x/y",
           "TASKPIN_TASK_ID": "4"}
    result = await run_taskpin(folder, "check", "--offline", env=env)
    assert result.returncode == 1
    assert_clean(result)
    out = result.stderr
    assert "TASKPIN_MAX_CONCURENT_SESSIONS (environment): unknown variable (did you mean " \
           "'TASKPIN_MAX_CONCURRENT_SESSIONS'?)" in out, out
    assert "TASKPIN_BORAD_CHANNEL (.env): unknown variable (did you mean 'TASKPIN_BOARD_CHANNEL'?)" in out
    assert "SLACK_BOT_TOKN (.env): unknown variable (did you mean 'SLACK_BOT_TOKEN'?)" in out
    assert "xoxb-1-2-secret" not in out
    for legit in ("TASKPIN_CRASH_AT", "TASKPIN_AGENTS_PREFIX", "TASKPIN_TEST_PG", "TASKPIN_TASK_ID"):
        assert legit not in out
    assert "3 configuration problems" in out


def test_placeholders_are_the_values_of_env_example():
    example = dotenv_values(ROOT / ".env.example")
    assert {name: example[name] for name in PLACEHOLDERS} == PLACEHOLDERS


async def test_env_example_copied_unchanged_is_flagged(folder, git_repo):
    write_config(folder, git_repo)
    (folder / ".env").write_text((ROOT / ".env.example").read_text())
    result = await run_taskpin(folder, "check", "--offline")
    assert result.returncode == 1
    assert_clean(result)
    for name in PLACEHOLDERS:
        assert f"{name}: is still the example value from .env.example" in result.stderr, result.stderr
    assert "unknown variable" not in result.stderr      # every line of .env.example is a real setting
    assert f"{len(PLACEHOLDERS)} configuration problems" in result.stderr


PG = ("postgresql://postgres@127.0.0.1:5432/taskpin", "postgresql+asyncpg://postgres@127.0.0.1:5432/taskpin")
CHECK, RUN, DB_UPGRADE = ("check", "--offline"), ("run",), ("db", "upgrade")


@pytest.mark.parametrize("url, hint, command", [
    (*PG, CHECK), (*PG, RUN), (*PG, DB_UPGRADE),
    ("sqlite:///./taskpin.db", "sqlite+aiosqlite:///./taskpin.db", DB_UPGRADE),
    ("postgresql+psycopg2://u@h/db", "postgresql+asyncpg://u@h/db", CHECK)])
async def test_a_database_url_without_an_async_driver_gets_a_hint(folder, git_repo, url, hint, command):
    write_config(folder, git_repo)
    result = await run_taskpin(folder, *command, env={**OFFLINE_SLACK, "TASKPIN_DATABASE_URL": url})
    assert result.returncode == 1
    assert_clean(result)
    assert f"write it as {hint}" in result.stderr, result.output
    assert "No module named" not in result.output
    assert not (folder / "taskpin.db").exists()


@pytest.mark.parametrize("setting", ["TASKPIN_LOG_DIR", "TASKPIN_WORKSPACES_DIR"])
async def test_an_unwritable_folder_is_caught_by_check(folder, git_repo, setting):
    write_config(folder, git_repo)
    (folder / "a-file").write_text("in the way\n")
    result = await run_taskpin(folder, "check", "--offline", env={**OFFLINE_SLACK, setting: "a-file/sub"})
    assert result.returncode == 1
    assert_clean(result)
    assert f"{setting}: a-file/sub cannot be created" in result.stderr and "is not a folder" in result.stderr


async def test_check_in_an_empty_folder_leaves_nothing_behind(tmp_path):
    result = await run_taskpin(tmp_path, "check")
    assert result.returncode == 1
    assert_clean(result)
    assert list(tmp_path.iterdir()) == [], "check created files"


@pytest.mark.parametrize("port", ["70000", "-1", "0"])
async def test_a_port_outside_1_to_65535(folder, git_repo, port):
    write_config(folder, git_repo)
    result = await run_taskpin(folder, "check", "--offline", env={**OFFLINE_SLACK, "TASKPIN_HTTP_PORT": port})
    assert result.returncode == 1
    assert_clean(result)
    assert "TASKPIN_HTTP_PORT" in result.stderr and "1 configuration problem:" in result.stderr, result.stderr


async def test_a_port_already_taken_stops_run_with_one_line(folder, git_repo):
    write_config(folder, git_repo)
    with socket.create_server(("127.0.0.1", 0)) as taken:
        port = taken.getsockname()[1]
        env = {**OFFLINE_SLACK, "TASKPIN_HTTP_HOST": "127.0.0.1", "TASKPIN_HTTP_PORT": str(port),
               "SLACK_API_URL": "http://127.0.0.1:1/api/"}
        result = await run_taskpin(folder, "run", env=env)
    assert result.returncode == 1
    assert_clean(result)
    assert f"TASKPIN_HTTP_PORT: port {port} on 127.0.0.1 is already in use" in result.stderr, result.stderr


async def test_malformed_and_undecodable_dotenv_lines(folder, git_repo):
    write_config(folder, git_repo)
    (folder / ".env").write_text('SLACK_BOT_TOKEN=xoxb-1-2-abc\nthis is not a setting\nTASKPIN_BOARD_CHANNEL="C01\n')
    result = await run_taskpin(folder, "check", "--offline", env={"SLACK_APP_TOKEN": "xapp-1"})
    assert result.returncode == 1
    assert_clean(result)
    assert ".env line 2: cannot be parsed: 'this is not a setting'" in result.stderr, result.stderr
    assert ".env line 3: cannot be parsed: 'TASKPIN_BOARD_CHANNEL'" in result.stderr   # the name, never a value
    (folder / ".env").write_bytes(b"SLACK_BOT_TOKEN=\xff\xfe\n")
    result = await run_taskpin(folder, "check", "--offline")
    assert result.returncode == 1
    assert_clean(result)
    assert ".env: is not UTF-8 text" in result.stderr, result.stderr


async def test_log_levels_and_version(tmp_path):
    result = await run_taskpin(tmp_path, "run", "--log-level", "debug")
    assert result.returncode == 1 and "not starting" in result.stderr       # got past the flag
    assert_clean(result)
    result = await run_taskpin(tmp_path, "run", "--log-level", "loud")
    assert result.returncode == 2 and "invalid choice: 'LOUD'" in result.stderr
    assert_clean(result)
    result = await run_taskpin(tmp_path, "--version")
    assert result.returncode == 0 and result.stdout.startswith("taskpin ")

