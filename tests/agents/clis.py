"""Where the real agent CLIs are: on PATH, or in the npm prefix .ci/run installs them into."""
from __future__ import annotations

import os
import shutil
from pathlib import Path

NPM_PREFIX = Path(os.environ.get("TASKPIN_AGENTS_PREFIX", Path.home() / ".cache" / "taskpin-agents"))


def find_cli(name: str) -> str | None:
    """The absolute path of an agent CLI (`codex`, `claude-agent-acp`...), or None."""
    local = NPM_PREFIX / "node_modules" / ".bin" / name
    if local.exists():
        return str(local)
    return shutil.which(name)


def require_cli(name: str, install_hint: str) -> str:
    """The CLI's path; a skip that says why and how to install it when it is missing.

    In CI (.ci/run installs every CLI) a missing CLI is a failure, not a skip."""
    import pytest

    path = find_cli(name)
    if path:
        return path
    message = f"{name} is not installed ({install_hint}); .ci/run installs it"
    if os.environ.get("CI"):
        pytest.fail(message)
    pytest.skip(message)
