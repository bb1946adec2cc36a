"""compose.yaml is what the README says: PostgreSQL, one `slack` process, two workers; Slack
settings only for the slack process, the repository and a shared worktree volume for workers."""
from __future__ import annotations

import yaml

from tests.cli_helpers import ROOT


def test_compose_runs_postgresql_one_slack_process_and_two_workers():
    services = yaml.safe_load((ROOT / "compose.yaml").read_text())["services"]
    assert set(services) == {"postgres", "slack", "worker-1", "worker-2"}
    assert services["slack"]["command"] == ["taskpin", "run", "--role", "slack"]
    assert services["slack"]["env_file"] == ".env"
    names = set()
    for name in ("worker-1", "worker-2"):
        worker = services[name]
        assert worker["command"] == ["taskpin", "run", "--role", "worker"]
        assert "env_file" not in worker and not any(k.startswith("SLACK_") for k in worker["environment"])
        assert any(v.startswith("taskpin-work:") for v in worker["volumes"])      # worktrees shared
        names.add(worker["environment"]["TASKPIN_WORKER_NAME"])
    assert len(names) == 2
    urls = {s["environment"]["TASKPIN_DATABASE_URL"] for n, s in services.items() if n != "postgres"}
    assert len(urls) == 1 and urls.pop().startswith("postgresql+asyncpg://")
