"""Agent options are pydantic models (extra="forbid"): a misspelt option is a configuration
error naming the key, the valid keys and the closest one, in `taskpin check` and `taskpin run`;
the README's option tables are made from the models and cannot drift from them."""
from __future__ import annotations

import re
import tomllib
from pathlib import Path

import pytest

from orchestrator.config import AgentConfig
from orchestrator.harness import HarnessConfigError, build_harness
from orchestrator.harness.docs import blocks, options_table, render
from orchestrator.harness.registry import OPTION_MODELS, available_kinds, options_model, validate_agent_options
from tests.test_cli import taskpin, write_toml

README = Path(__file__).resolve().parent.parent / "README.md"


def agents_section() -> str:
    text = README.read_text()
    start = text.index("## Agents\n")
    end = text.find("\n## ", start + 1)
    return text[start:end if end >= 0 else None]


@pytest.mark.parametrize("kind, options, key, guess", [
    ("command", {"command": ["a"], "prompt": "arg"}, "prompt", "prompt_via"),
    ("command", {"command": ["a"], "promt_via": "arg"}, "promt_via", "prompt_via"),
    ("acp", {"command": ["a"], "mdoe": "default"}, "mdoe", "mode"),
    ("codex", {"modle": "gpt-5"}, "modle", "model"),
    ("claude-code", {"permision_mode": "plan"}, "permision_mode", "permission_mode"),
])
def test_a_misspelt_option_names_the_key_the_closest_and_the_valid_ones(kind, options, key, guess):
    [(where, what, fix)] = validate_agent_options(kind, options)
    assert where == key
    assert f"unknown option {key!r}" in what and f"did you mean {guess!r}" in what
    assert f"rename it to {guess!r}" in fix
    for valid in options_model(kind).model_fields:
        assert valid in fix
    with pytest.raises(HarnessConfigError, match=rf"agent 'x'.*{key}.*{guess}"):
        build_harness("x", AgentConfig(kind=kind, **options))


def test_every_kind_has_a_model_that_forbids_unknown_keys_and_describes_each_option():
    assert sorted(OPTION_MODELS) == available_kinds()
    for kind in OPTION_MODELS:
        model = options_model(kind)
        assert model.model_config.get("extra") == "forbid"
        assert [k for k, *_ in validate_agent_options(kind, {"zzz_not_an_option": 1})] == ["zzz_not_an_option"]
        undocumented = [name for name, field in model.model_fields.items() if not field.description]
        assert undocumented == [], f"{kind}: {undocumented} have no description"


def test_bad_values_and_unknown_kinds_are_problems_too():
    [(key, what, _fix)] = validate_agent_options("command", {"prompt_via": "srdin"})
    assert key == "prompt_via" and "did you mean 'stdin'" in what
    [(key, what, fix)] = validate_agent_options("codx", {})
    assert key == "kind" and "did you mean 'codex'" in what and "command" in fix
    assert validate_agent_options("codex", {"startup_timeout_s": 30, "model_provider": "p", "config": {"a": 1}}) == []


def test_the_readme_option_tables_are_the_models():
    text = README.read_text()
    found = blocks(agents_section())
    assert sorted(found) == sorted(OPTION_MODELS), "every agent kind needs an agent-options block in ## Agents"
    for kind, body in found.items():
        assert body == options_table(kind), (
            f"README's {kind} options differ from the model: run python -m orchestrator.harness.docs README.md")
    assert render(text) == text
    for name in ("startup_timeout_s", "model_provider", "config", "stop_grace_s"):   # once undocumented
        assert f"| `{name}` |" in found["codex"]


def test_the_readme_examples_are_valid_options():
    tables = 0
    for block in re.findall(r"```toml\n(.*?)```", agents_section(), re.S):
        for name, agent in tomllib.loads(block).get("agents", {}).items():
            kind = agent.pop("kind")
            assert validate_agent_options(kind, agent) == [], f"README example agents.{name}"
            tables += 1
    assert tables >= 4


def test_check_names_a_misspelt_option_and_run_refuses_to_start(tmp_path, git_repo):
    write_toml(tmp_path / "taskpin.toml", f"""
[repos.app]
path = "{git_repo}"

[agents.mine]
kind = "command"
command = ["python3", "agent.py"]
promt_via = "arg"
""")
    env = {"TASKPIN_DATABASE_URL": f"sqlite+aiosqlite:///{tmp_path}/t.db"}
    check = taskpin(tmp_path, "check", "--core-only", env=env)
    assert check.returncode == 1 and "Traceback" not in check.stderr
    assert "agents.mine.promt_via" in check.stderr and "did you mean 'prompt_via'" in check.stderr
    assert "rename it to 'prompt_via'" in check.stderr
    run = taskpin(tmp_path, "run", env=env)
    assert run.returncode == 1 and "agents.mine.promt_via" in run.stderr and "not starting" in run.stderr
