"""`taskpin check` on the workflow settings: setup commands, pull request tokens and access."""
from __future__ import annotations

import subprocess
import sys

import pytest

from orchestrator.check import check_all, check_github
from orchestrator.config import Settings
from tests.cli_helpers import clean_env
from tests.fakes.github_api import FakeGitHub

TOKEN = "ghp_checktoken0123456789"


def settings(tmp_path, repo, **repo_fields) -> Settings:
    agents = {"bot": {"kind": "command", "command": [sys.executable, "-c", "print(1)"]}}
    return Settings(_env_file=None, database_url=f"sqlite+aiosqlite:///{tmp_path / 'x.db'}",
                    workspaces_dir=tmp_path / "wt", log_dir=tmp_path / "logs", agents=agents,
                    repos={"api": {"path": str(repo), "base_branch": "main", **repo_fields}},
                    )


async def test_a_setup_command_not_on_path_is_a_problem_with_its_fix(tmp_path, git_repo):
    problems = await check_all(settings(tmp_path, git_repo, setup=[["git", "status"], ["npmx", "ci"]]),
                               online=False)
    [problem] = [p for p in problems if p.where == "repos.api.setup"]
    assert "command 2 (npmx ci): `npmx` is not on PATH" in problem.what
    assert "install it on this machine" in problem.fix


async def test_pull_requests_without_a_token_or_a_github_remote_are_problems(tmp_path, git_repo, monkeypatch):
    monkeypatch.delenv("GITHUB_TOKEN", raising=False)
    subprocess.run(["git", "remote", "add", "origin", str(tmp_path / "elsewhere.git")], cwd=git_repo, check=True)
    problems = await check_all(settings(tmp_path, git_repo, on_approve="pull_request"), online=False)
    where = {p.where: p for p in problems}
    assert "no GitHub token is set" in where["TASKPIN_GITHUB_TOKEN"].what
    assert 'github_repo = "owner/name"' in where["repos.api.github_repo"].fix


@pytest.mark.parametrize("case", ["ok", "401", "404", "read-only", "unreachable"])
async def test_the_tokens_access_is_checked_when_github_answers(tmp_path, git_repo, case):
    async with FakeGitHub(token=TOKEN, repos={"acme/api": git_repo}, can_push=case != "read-only") as fake:
        url = "http://127.0.0.1:9" if case == "unreachable" else fake.url
        s = Settings(_env_file=None, github_token="ghp_wrong" if case == "401" else TOKEN, github_api_url=url,
                     repos={"api": {"path": str(git_repo), "on_approve": "pull_request",
                                    "github_repo": "acme/other" if case == "404" else "acme/api"}})
        problems = await check_github(s)
    expected = {"ok": None, "unreachable": None, "401": "GitHub refused the token (401",
                "404": "no repository acme/other", "read-only": "can read acme/api but not push"}[case]
    if expected is None:
        assert problems == []
    else:
        [problem] = problems
        assert expected in problem.what and "ghp_" not in str(problem)


def test_taskpin_check_names_a_missing_setup_command(tmp_path, git_repo):
    (tmp_path / "taskpin.toml").write_text(f'''
[repos.api]
path = "{git_repo}"
setup = [["no-such-installer", "deps"]]
[agents.bot]
command = ["{sys.executable}", "-c", "print(1)"]
''')
    result = subprocess.run([sys.executable, "-m", "bot.cli", "check", "--core-only", "--offline"], cwd=tmp_path,
                            env=clean_env(), capture_output=True, text=True, timeout=60)
    assert result.returncode == 1
    assert "repos.api.setup: command 1 (no-such-installer deps): `no-such-installer` is not on PATH" in result.stderr
    assert "Traceback" not in result.stderr
