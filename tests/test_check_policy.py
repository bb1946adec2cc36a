"""`taskpin check` on approval-policy rules: a rule that cannot be read is an error naming it and
how to write it; a tool no agent kind reports is a warning (the check still passes)."""
from __future__ import annotations

import subprocess
import sys

from tests.cli_helpers import clean_env


def check(tmp_path, git_repo, repo_policy: str, agent_policy: str = "[]") -> subprocess.CompletedProcess:
    (tmp_path / "taskpin.toml").write_text(f'''
database_url = "sqlite+aiosqlite:///{tmp_path}/t.db"
[repos.api]
path = "{git_repo}"
policy = {repo_policy}
[agents.bot]
kind = "command"
command = ["{sys.executable}", "-c", "print(1)"]
policy = {agent_policy}
''')
    return subprocess.run([sys.executable, "-m", "bot.cli", "check", "--core-only", "--offline"], check=False, cwd=tmp_path,
                          env=clean_env(), capture_output=True, text=True, timeout=60)


def test_a_rule_that_cannot_be_read_fails_the_check_with_how_to_write_it(tmp_path, git_repo):
    result = check(tmp_path, git_repo, '["allow Read", "deny Bash(rm -rf *"]')
    assert result.returncode == 1 and "Traceback" not in result.stderr
    assert ("repos.api.policy: rule 2 ('deny Bash(rm -rf *'): 'Bash(rm -rf *' has no closing ')': write it like "
            "Bash(pytest *)") in result.stderr


def test_an_unknown_tool_is_a_warning_and_passes_the_check(tmp_path, git_repo):
    result = check(tmp_path, git_repo, '["allow Rade", "allow Bash(pytest *)"]', '["deny WebFetch", "allow Glob"]')
    assert "warning: repos.api.policy[0]: no agent kind reports a tool named 'Rade'" in result.stderr
    assert "did you mean 'Read'?" in result.stderr
    assert "agents.bot.policy" not in result.stderr
    assert "configuration OK (see the warnings above)" in result.stdout


def test_every_agent_kind_takes_a_policy_and_its_adapter_never_sees_it():
    from orchestrator.config import AgentConfig
    from orchestrator.harness.options import agent_options
    from orchestrator.harness.registry import available_kinds, validate_agent_options

    for kind in available_kinds():
        assert validate_agent_options(kind, {"policy": ["allow Read"]}) == [], kind
        config = AgentConfig(kind=kind, policy=["allow Read"])
        assert config.policy == ["allow Read"] and "policy" not in agent_options(config)
        assert "policy" not in agent_options({"kind": kind, "policy": ["allow Read"]})
