"""What the README and the example files promise, checked against the code and the build files."""
from __future__ import annotations

import re

from bot.settings import env_aliases
from orchestrator.config import env_names
from tests.cli_helpers import ROOT

README = (ROOT / "README.md").read_text(encoding="utf-8")


def setup_commands() -> list[str]:
    block = README.split("## Set-up", 1)[1].split("```bash", 1)[1].split("```", 1)[0]
    return [line for line in block.splitlines() if line and not line.startswith("#")]


def test_the_setup_commands_create_and_use_a_virtual_environment():
    demo, tests = setup_commands()
    for command in (demo, tests):
        assert command.startswith("python3 -m venv .venv && .venv/bin/pip install -e ")
        assert "python3 -m pip" not in command       # Debian's Python refuses pip outside a venv
    assert demo.endswith(".venv/bin/taskpin dev")
    assert tests.endswith(".venv/bin/python -m pytest")


def test_ci_runs_exactly_the_readme_test_command():
    _, tests = setup_commands()
    ci = [line for line in (ROOT / ".ci" / "run").read_text().splitlines() if line and not line.startswith("#")]
    assert ci[-1] == tests


def test_every_setting_is_in_env_example():
    listed = set(re.findall(r"^#?\s*([A-Z][A-Z0-9_]+)=", (ROOT / ".env.example").read_text(), re.M))
    settings = (env_names() | set(env_aliases())) - {"TASKPIN_REPOS", "TASKPIN_AGENTS"}   # TOML tables
    assert settings - listed == set(), "add them to .env.example with a comment"
    assert listed - settings == set(), ".env.example lists variables no setting reads"


def test_env_example_leaves_the_paths_the_docker_image_sets_to_it():
    """`docker run --env-file .env` must not move the database out of the volume."""
    dockerfile = (ROOT / "Dockerfile").read_text()
    image_env = set(re.findall(r"(TASKPIN_[A-Z_]+)=\S*/home/taskpin/data/", dockerfile))
    assert image_env == {"TASKPIN_DATABASE_URL", "TASKPIN_WORKSPACES_DIR", "TASKPIN_LOG_DIR"}
    active = set(re.findall(r"^([A-Z][A-Z0-9_]+)=", (ROOT / ".env.example").read_text(), re.M))
    assert not image_env & active
    assert "TASKPIN_CONFIG" not in active


def test_the_docker_run_line_matches_the_image():
    dockerfile = (ROOT / "Dockerfile").read_text()
    run = README.split("docker run -d", 1)[1].split("```", 1)[0]
    assert 'VOLUME ["/home/taskpin/data"]' in dockerfile and "-v taskpin-data:/home/taskpin/data" in run
    assert "WORKDIR /home/taskpin" in dockerfile and ":/home/taskpin/taskpin.toml:ro" in run
    uid = re.search(r"useradd .*--uid (\d+) taskpin", dockerfile).group(1)
    assert f"chown -R {uid}:{uid} /srv/taskpin/app" in README and "-v /srv/taskpin/app:/srv/taskpin/app" in run
    assert "--env-file .env" in run and "-p 3000:3000" in run and "TASKPIN_HTTP_PORT=3000" in dockerfile
    assert "COPY manifests ./manifests" in dockerfile and "pip install --no-cache-dir -e ." in dockerfile
