"""The real agent CLIs the harness tests drive, at pinned versions.

The test suite installs them itself (tests/conftest.py calls ensure_installed() when a collected
test needs one): with npm, into an npm prefix shared by every run on the machine
(~/.cache/taskpin-agents, or TASKPIN_AGENTS_PREFIX), once, under a file lock so parallel runs
do not race. The Claude Code CLI comes inside the claude-agent-sdk wheel: nothing to install.
"""
from __future__ import annotations

import fcntl
import json
import os
import shutil
import subprocess
from pathlib import Path

NPM_PREFIX = Path(os.environ.get("TASKPIN_AGENTS_PREFIX", Path.home() / ".cache" / "taskpin-agents"))
# executable -> (npm package, pinned version)
PINNED = {
    "codex": ("@openai/codex", "0.169.0"),
    "claude-agent-acp": ("@agentclientprotocol/claude-agent-acp", "0.101.0"),
}
INSTALL_TIMEOUT_S = 900
# executable -> why it could not be installed (read by the terminal summary in tests/conftest.py)
not_installed: dict[str, str] = {}


def installed_version(name: str) -> str | None:
    package, _ = PINNED[name]
    manifest = NPM_PREFIX / "node_modules" / package / "package.json"
    try:
        return json.loads(manifest.read_text(encoding="utf-8")).get("version")
    except (OSError, ValueError):
        return None


def _missing() -> list[str]:
    return [name for name, (_, version) in PINNED.items()
            if installed_version(name) != version or not (NPM_PREFIX / "node_modules" / ".bin" / name).exists()]


def ensure_installed() -> None:
    """Install every pinned CLI that is not in the prefix yet; remember why one could not be."""
    if not _missing():
        return
    npm = shutil.which("npm")
    if npm is None:
        for name in _missing():
            if shutil.which(name) is None:
                not_installed[name] = "npm is not installed"
        return
    NPM_PREFIX.mkdir(parents=True, exist_ok=True)
    with open(NPM_PREFIX / ".install.lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)          # another run may be installing right now
        missing = _missing()
        if not missing:
            return
        specs = [f"{PINNED[name][0]}@{PINNED[name][1]}" for name in missing]
        try:
            done = subprocess.run([npm, "install", "--no-audit", "--no-fund", "--loglevel=error",
                                   "--prefix", str(NPM_PREFIX), *specs],
                                  capture_output=True, text=True, timeout=INSTALL_TIMEOUT_S)
            error = (done.stderr.strip().splitlines() or [f"exit code {done.returncode}"])[-1] \
                if done.returncode else ""
        except (OSError, subprocess.TimeoutExpired) as exc:
            error = str(exc)
    for name in _missing():
        if shutil.which(name) is None:
            not_installed[name] = f"npm install failed: {error[:200]}" if error else "npm install did not provide it"


def find_cli(name: str) -> str | None:
    """The absolute path of an agent CLI (`codex`, `claude-agent-acp`...), or None."""
    local = NPM_PREFIX / "node_modules" / ".bin" / name
    if local.exists():
        return str(local)
    return shutil.which(name)


def require_cli(name: str, install_hint: str) -> str:
    """The CLI's path; a skip that says why and how to install it when it could not be installed.

    In CI a missing CLI is a failure, not a skip."""
    import pytest

    path = find_cli(name)
    if path:
        return path
    why = not_installed.get(name, "not installed")
    message = f"{name}: {why} ({install_hint}, or install Node.js with npm: the tests then install it)"
    if os.environ.get("CI"):
        pytest.fail(message)
    pytest.skip(message)


def install_advice(names: list[str]) -> str:
    versions = " ".join(f"{PINNED[name][0]}@{PINNED[name][1]}" for name in names)
    return f"install Node.js with npm and run the tests again (they install {versions} into {NPM_PREFIX})"
