"""`taskpin run --role all|slack|worker` and `taskpin check --role`: what each role asks for, and
SQLite's one process."""
from __future__ import annotations

import signal

from tests.cli_helpers import run_taskpin, write_config

from .harness import BOARD


async def test_a_worker_is_not_asked_for_slack_settings(tmp_path, git_repo, pg_url):
    write_config(tmp_path, git_repo)
    env = {"TASKPIN_DATABASE_URL": pg_url}
    worker = await run_taskpin(tmp_path, "check", "--role", "worker", "--offline", env=env)
    assert worker.returncode == 0, worker.output
    assert "configuration OK" in worker.stdout
    every_role = await run_taskpin(tmp_path, "check", "--offline", env=env)
    assert every_role.returncode == 1 and "SLACK_BOT_TOKEN: is not set" in every_role.stderr, every_role.output


async def test_a_slack_process_is_not_asked_for_repositories_or_agent_clis(tmp_path, git_repo, pg_url):
    (tmp_path / "taskpin.toml").write_text('[repos.app]\npath = "/nowhere/on/this/machine"\n\n'
                                           '[agents.claude]\nkind = "command"\ncommand = ["no-such-agent-cli"]\n')
    env = {"TASKPIN_DATABASE_URL": pg_url, "SLACK_BOT_TOKEN": "xoxb-1-2-abc", "SLACK_APP_TOKEN": "xapp-1-abc",
           "TASKPIN_BOARD_CHANNEL": "C0123ABCD"}
    slack = await run_taskpin(tmp_path, "check", "--role", "slack", "--offline", env=env)
    assert slack.returncode == 0, slack.output
    worker = await run_taskpin(tmp_path, "check", "--role", "worker", "--offline", env=env)
    assert worker.returncode == 1 and "repos.app" in worker.stderr and "agents.claude" in worker.stderr, worker.output


async def test_the_split_roles_on_sqlite_are_refused_naming_postgresql(tmp_path, git_repo):
    write_config(tmp_path, git_repo)
    result = await run_taskpin(tmp_path, "check", "--role", "worker", "--offline")
    assert result.returncode == 1
    assert "--role: `taskpin run --role worker` shares the database" in result.stderr, result.stderr
    assert "PostgreSQL" in result.stderr and "Traceback" not in result.output


async def test_a_second_process_on_one_sqlite_database_is_refused_at_start(emu, tmp_path, git_repo, cluster_factory):
    cluster = cluster_factory({"bot": [{"finish": "done"}]})
    sqlite = {"TASKPIN_DATABASE_URL": f"sqlite+aiosqlite:///{tmp_path / 'one.db'}"}
    first = cluster.start("all", "first", **sqlite)
    await emu.wait_for(lambda: cluster.check_alive() and emu.pinned(BOARD), timeout=40)
    second = cluster.start("all", "second", **sqlite)
    await emu.wait_for(lambda: not second.alive(), timeout=40)
    assert second.popen.returncode == 1, second.text()
    assert f"another taskpin process (pid {first.pid}) is running on the SQLite database" in second.text()
    assert "PostgreSQL" in second.text() and "Traceback" not in second.text()
    assert first.alive()


async def test_a_worker_runs_without_any_slack_setting_and_stops_on_sigterm(emu, cluster_factory):
    cluster = cluster_factory({"bot": [{"finish": "done"}]})
    worker = cluster.start("worker", "w1")
    await emu.wait_for(lambda: cluster.check_alive() and "taskpin worker w1 is running" in worker.text(), timeout=40)
    assert not emu.count("auth.test"), "a worker never talks to Slack"
    worker.popen.send_signal(signal.SIGTERM)
    assert worker.popen.wait(30) == 0, worker.text()
    assert "Traceback" not in worker.text()
