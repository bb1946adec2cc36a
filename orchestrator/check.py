"""`taskpin check`: every configuration problem, with what is wrong and how to fix it."""
from __future__ import annotations

import asyncio
import os
import tempfile
from dataclasses import dataclass
from pathlib import Path

from sqlalchemy import text
from sqlalchemy.engine import URL, make_url
from sqlalchemy.exc import ArgumentError

from .config import OnApprove, RepoConfig, Settings
from .harness.registry import build_harness, validate_agent_options
from .store import make_engine
from .workspaces import Workspaces


@dataclass(frozen=True)
class Problem:
    where: str     # the setting or section at fault
    what: str      # what is wrong
    fix: str       # how to fix it
    warning: bool = False   # worth a look, but taskpin works as configured

    def __str__(self) -> str:
        return f"{'warning: ' if self.warning else ''}{self.where}: {self.what}\n    fix: {self.fix}"


def check_structure(settings: Settings, *, machine: bool = True) -> list[Problem]:
    """Everything in the settings; with `machine`, also what this machine must have to run agents
    (the repositories, the agent CLIs, the worktree and log folders): a `slack` process has none."""
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
    url_problem = database_url_problem(settings.database_url)
    if url_problem is not None:
        problems.append(url_problem)
    if not machine:
        return problems
    problems += directory_problems("TASKPIN_WORKSPACES_DIR", settings.workspaces_dir)
    problems += directory_problems("TASKPIN_LOG_DIR", settings.log_dir)
    workspaces = Workspaces(settings.workspaces_dir)
    for name, repo in settings.repos.items():
        repo_problems = workspaces.check_repo(repo.path, repo.base_branch)
        for message in repo_problems:
            problems.append(Problem(f"repos.{name}", message, f"edit repos.{name} in taskpin.toml"))
        problems += workflow_problems(settings, name, repo, repo_ok=not repo_problems)
        problems += policy_problems(f"repos.{name}.policy", repo.policy)
    for name, agent in settings.agents.items():
        problems += policy_problems(f"agents.{name}.policy", agent.policy)
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


def workflow_problems(settings: Settings, name: str, repo: RepoConfig, *, repo_ok: bool) -> list[Problem]:
    """Setup commands that cannot start; pull requests without a token or a GitHub repository."""
    from .worktree_setup import setup_command_problems

    problems = [Problem(f"repos.{name}.setup", f"command {n + 1} ({' '.join(repo.setup[n])}): {what}",
                        f"install it on this machine (the one taskpin runs on), or fix `setup` in [repos.{name}]")
                for n, what in setup_command_problems(repo)]
    if repo.on_approve is OnApprove.PULL_REQUEST:
        if settings.github_token is None:
            problems.append(Problem("TASKPIN_GITHUB_TOKEN", f"repos.{name} opens pull requests on approve, but no "
                                    "GitHub token is set", "set TASKPIN_GITHUB_TOKEN (or GITHUB_TOKEN) in the "
                                    "environment or .env to a token that can push and open pull requests"))
        if repo_ok:
            from .errors import ActionRefused
            from .pull_requests import github_repo_of

            try:
                github_repo_of(name, repo)
            except ActionRefused:
                problems.append(Problem(f"repos.{name}.github_repo", f"remote {repo.remote!r} is not a GitHub URL, "
                                        "so taskpin cannot tell which repository to open pull requests on",
                                        f'set github_repo = "owner/name" in [repos.{name}]'))
    return problems


def policy_problems(where: str, rules: list[str]) -> list[Problem]:
    """Bad rules (errors; loading the settings refuses them too) and tools no agent reports (warnings)."""
    from .policy import rule_problems

    return [Problem(at, what, fix, warning) for at, what, fix, warning in rule_problems(rules, where)]


async def check_github(settings: Settings) -> list[Problem]:
    """For each repository that opens pull requests: the token's access, when GitHub answers."""
    from .errors import ActionRefused
    from .github import GitHub, GitHubError
    from .pull_requests import github_repo_of

    if settings.github_token is None:
        return []
    problems = []
    for name, repo in settings.repos.items():
        if repo.on_approve is not OnApprove.PULL_REQUEST:
            continue
        try:
            full_name = github_repo_of(name, repo)
        except ActionRefused:
            continue    # reported by check_structure
        where = f"repos.{name}"
        try:
            async with GitHub(settings.github_token.get_secret_value(), repo.github_api_url or settings.github_api_url,
                              retries=0, timeout_s=min(settings.github_timeout_s, 10)) as github:
                seen = await github.repo_access(full_name)
        except GitHubError as exc:
            if exc.status is None:
                continue    # GitHub cannot be reached from here: nothing to tell about the token
            problems.append(Problem(where, str(exc).replace(", then approve again", ""),
                                    "fix the token or github_repo, then run `taskpin check` again"))
            continue
        if (seen.get("permissions") or {}).get("push") is False:
            problems.append(Problem(where, f"the GitHub token can read {full_name} but not push to it",
                                    "give the token write access to its contents and pull requests"))
    return problems


def directory_problems(where: str, path: Path) -> list[Problem]:
    """The folder taskpin creates files in: it, or the nearest folder above it that exists, must
    be a writable folder. Tried with a real file (root passes permission checks it would fail)."""
    existing = Path(os.path.abspath(path))
    while not existing.exists() and existing != existing.parent:
        existing = existing.parent
    fix = f"create {path} writable by the user taskpin runs as, or set {where} to another folder"
    if not existing.is_dir():
        return [Problem(where, f"{path} cannot be created: {existing} is not a folder", fix)]
    try:
        with tempfile.TemporaryFile(dir=existing):
            pass
    except OSError as exc:
        return [Problem(where, f"{path} is not writable ({exc.strerror} in {existing})", fix)]
    return []


ASYNC_DRIVERS = {"sqlite": "aiosqlite", "postgresql": "asyncpg"}


def database_url_problem(url: str) -> Problem | None:
    """A URL SQLAlchemy cannot use with asyncio: no async driver, an unknown scheme, garbage."""
    example = "sqlite+aiosqlite:///./taskpin.db or postgresql+asyncpg://user@host:5432/taskpin"
    try:
        parsed = make_url(url)
    except ArgumentError:
        return Problem("TASKPIN_DATABASE_URL", "is not a database URL", f"use e.g. {example}")
    backend = {"postgres": "postgresql"}.get(parsed.get_backend_name(), parsed.get_backend_name())
    driver = ASYNC_DRIVERS.get(backend)
    if driver is None:
        return Problem("TASKPIN_DATABASE_URL", f"{backend!r} is not a supported database",
                       f"use SQLite or PostgreSQL: {example}")
    if parsed.get_driver_name() != driver:
        fixed = _with_driver(parsed, backend, driver)
        return Problem("TASKPIN_DATABASE_URL", f"{parsed.drivername}:// has no asyncio driver (taskpin needs "
                       f"{backend}+{driver})", f"write it as {fixed}")
    return None


def _with_driver(parsed: URL, backend: str, driver: str) -> str:
    return parsed.set(drivername=f"{backend}+{driver}").render_as_string(hide_password=True)


def sqlite_file(url: str) -> Path | None:
    """The file of a SQLite URL (None for other databases and in-memory ones)."""
    parsed = make_url(url)
    database = parsed.database
    if parsed.get_backend_name() != "sqlite" or not database or database == ":memory:" or database.startswith("file:"):
        return None
    return Path(database)


async def check_database(url: str) -> list[Problem]:
    """Connect and ask for 1. A SQLite file that does not exist yet is not created: its folder
    is checked instead (taskpin creates the file at its first start)."""
    if database_url_problem(url) is not None:
        return []       # already reported by check_structure
    path = sqlite_file(url)
    if path is not None and not path.exists():
        return directory_problems("TASKPIN_DATABASE_URL", path.parent)
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


ROLES = ("all", "slack", "worker")


def role_problem(role: str, url: str) -> Problem | None:
    """`slack` and `worker` processes work together through a shared database: PostgreSQL."""
    if role == "all" or database_url_problem(url) is not None or make_url(url).get_backend_name() != "sqlite":
        return None
    return Problem("--role", f"`taskpin run --role {role}` shares the database with other taskpin processes, "
                   "and SQLite serves one process",
                   "use PostgreSQL (TASKPIN_DATABASE_URL=postgresql+asyncpg://user@host:5432/taskpin), or run "
                   "`taskpin run` (every role in one process) on SQLite")


async def check_all(settings: Settings, *, online: bool = True, role: str = "all") -> list[Problem]:
    """A `slack` process is not asked for what only machines that run agents need."""
    problems = check_structure(settings, machine=role != "slack") + await check_database(settings.database_url)
    problem = role_problem(role, settings.database_url)
    problems += [problem] if problem else []
    return problems + (await check_github(settings) if online and role != "slack" else [])
