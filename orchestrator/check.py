"""`taskpin check`: every configuration problem, with what is wrong and how to fix it."""
from __future__ import annotations

import asyncio
from dataclasses import dataclass

from sqlalchemy import text

from .config import Settings
from .harness.registry import build_harness, validate_agent_options
from .store import make_engine
from .workspaces import Workspaces


@dataclass(frozen=True)
class Problem:
    where: str     # the setting or section at fault
    what: str      # what is wrong
    fix: str       # how to fix it

    def __str__(self) -> str:
        return f"{self.where}: {self.what}\n    fix: {self.fix}"


def check_structure(settings: Settings) -> list[Problem]:
    problems: list[Problem] = []
    if settings.config is not None and not settings.config.is_file():
        problems.append(Problem("TASKPIN_CONFIG", f"{settings.config} does not exist",
                                "create it from taskpin.example.toml, or fix the path"))
    if not settings.repos:
        problems.append(Problem("repos", "no repository is configured",
                                "add a [repos.NAME] table with `path` and `base_branch` to taskpin.toml "
                                "(see taskpin.example.toml)"))
    if not settings.agents:
        problems.append(Problem("agents", "no agent is configured",
                                "add an [agents.NAME] table with `kind` and its options to taskpin.toml"))
    if settings.default_repo and settings.default_repo not in settings.repos:
        problems.append(Problem("TASKPIN_DEFAULT_REPO", f"names {settings.default_repo!r}, which is not configured",
                                f"use one of: {', '.join(settings.repos) or '(none yet)'}"))
    if settings.default_agent and settings.default_agent not in settings.agents:
        problems.append(Problem("TASKPIN_DEFAULT_AGENT", f"names {settings.default_agent!r}, which is not configured",
                                f"use one of: {', '.join(settings.agents) or '(none yet)'}"))
    workspaces = Workspaces(settings.workspaces_dir)
    for name, repo in settings.repos.items():
        for message in workspaces.check_repo(repo.path, repo.base_branch):
            problems.append(Problem(f"repos.{name}", message, f"edit repos.{name} in taskpin.toml"))
    for name, agent in settings.agents.items():
        option_problems = validate_agent_options(agent.kind, agent.options)
        problems += [Problem(f"agents.{name}.{key}", what, fix) for key, what, fix in option_problems]
        if option_problems:
            continue
        try:
            harness = build_harness(name, agent)
        except Exception as exc:
            problems.append(Problem(f"agents.{name}", str(exc), f"edit agents.{name} in taskpin.toml"))
            continue
        for message in harness.check():
            problems.append(Problem(f"agents.{name}", message, f"edit agents.{name} in taskpin.toml"))
    return problems


async def check_database(url: str) -> list[Problem]:
    engine = make_engine(url)
    try:
        async with asyncio.timeout(10):
            async with engine.connect() as conn:
                await conn.execute(text("SELECT 1"))
    except Exception as exc:
        detail = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
        return [Problem("TASKPIN_DATABASE_URL", f"the database is unreachable ({detail})",
                        "start the database or fix the URL, e.g. sqlite+aiosqlite:///./taskpin.db or "
                        "postgresql+asyncpg://user@host:5432/taskpin")]
    finally:
        await engine.dispose()
    return []


async def check_all(settings: Settings) -> list[Problem]:
    return check_structure(settings) + await check_database(settings.database_url)
