"""Shared fixtures: real SQLite files, a fresh PostgreSQL database per test, real git repos."""
from __future__ import annotations

import os
import subprocess
import sys
import uuid
from pathlib import Path

import pytest

PG_ADMIN_URL = os.environ.get("TASKPIN_TEST_PG", "postgresql://postgres@127.0.0.1:5432/test")
ROOT = Path(__file__).resolve().parent.parent
AGENTS_DIR = Path(__file__).resolve().parent / "agents"


async def _pg_database():
    """Create a throwaway PostgreSQL database; yields its URL, drops it afterwards.

    A missing server skips locally but fails in CI, where PostgreSQL is part of the machine.
    """
    import asyncpg

    try:
        admin = await asyncpg.connect(PG_ADMIN_URL, timeout=5)
    except Exception as exc:  # noqa: BLE001 - any failure means "no server"
        problem = f"PostgreSQL at {PG_ADMIN_URL} is unreachable: {exc}"
        if os.environ.get("CI"):
            pytest.fail(problem)
        pytest.skip(problem)
    name = f"taskpin_test_{uuid.uuid4().hex[:12]}"
    await admin.execute(f'CREATE DATABASE "{name}"')
    await admin.close()
    base = PG_ADMIN_URL.rsplit("/", 1)[0].replace("postgresql://", "postgresql+asyncpg://")
    try:
        yield f"{base}/{name}"
    finally:
        admin = await asyncpg.connect(PG_ADMIN_URL, timeout=5)
        await admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        await admin.close()


@pytest.fixture
async def pg_url():
    async for url in _pg_database():
        yield url


@pytest.fixture
def sqlite_url(tmp_path):
    return f"sqlite+aiosqlite:///{tmp_path / 'taskpin.db'}"


@pytest.fixture(params=["sqlite", "postgresql"])
async def db_url(request, tmp_path):
    """Runs a test once on a real SQLite file and once on a real PostgreSQL database."""
    if request.param == "sqlite":
        yield f"sqlite+aiosqlite:///{tmp_path / 'taskpin.db'}"
        return
    async for url in _pg_database():
        yield url


def git(cwd: Path, *args: str) -> str:
    return subprocess.run(["git", *args], cwd=cwd, check=True, capture_output=True, text=True).stdout.strip()


@pytest.fixture
def git_repo(tmp_path) -> Path:
    """A real repository with one commit on `main` and a clean working tree."""
    repo = tmp_path / "repo"
    repo.mkdir()
    git(repo, "init", "-q", "-b", "main")
    git(repo, "config", "user.email", "dev@example.com")
    git(repo, "config", "user.name", "Dev")
    (repo / "README.md").write_text("hello\n")
    (repo / "app.py").write_text("print('hi')\n")
    git(repo, "add", "-A")
    git(repo, "commit", "-q", "-m", "initial")
    return repo


@pytest.fixture
def agent_script() -> Path:
    return AGENTS_DIR / "scripted_agent.py"


PYTHON = sys.executable


# ---- a fresh clone skips nothing: the suite installs the agent CLIs it needs ---------------------

def pytest_collection_finish(session):
    """Install the pinned agent CLIs (cached per machine) when a selected test uses one."""
    if any(getattr(getattr(item, "module", None), "require_cli", None) for item in session.items):
        from tests.agents.clis import ensure_installed

        ensure_installed()


@pytest.hookimpl(wrapper=True, tryfirst=True)
def pytest_terminal_summary(terminalreporter):
    """One line naming what was skipped and how to get it, after the short summary."""
    yield
    skipped = terminalreporter.stats.get("skipped", [])
    if not skipped:
        return
    from tests.agents.clis import install_advice, not_installed

    reasons = " ".join(str(getattr(report, "longrepr", "")) for report in skipped)
    what, how = [], []
    clis = sorted(name for name in not_installed if f"{name}: " in reasons)
    if clis:
        what.append(", ".join(clis))
        how.append(install_advice(clis))
    if "PostgreSQL" in reasons:
        what.append("PostgreSQL")
        how.append(f"start PostgreSQL or point TASKPIN_TEST_PG at one (now {PG_ADMIN_URL})")
    detail = f" needing {' and '.join(what)}: {'; '.join(how)}" if what else " (reasons above)"
    terminalreporter.write_line(f"taskpin: {len(skipped)} test(s) skipped{detail}", yellow=True)
