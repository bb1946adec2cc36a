"""Settings: environment variables, a .env file, and a TOML file for repositories and agents.

Precedence, highest first: explicit arguments, environment, .env, TOML, defaults. Any setting
may go in the TOML file, as its environment name in lower case without TASKPIN_; relative
paths there are relative to the file's own folder.
"""
from __future__ import annotations

import os
import tomllib
from enum import StrEnum
from pathlib import Path
from typing import Annotated, Any

from dotenv import dotenv_values
from pydantic import BaseModel, ConfigDict, Field, SecretStr, field_validator
from pydantic_settings import (
    BaseSettings,
    InitSettingsSource,
    NoDecode,
    PydanticBaseSettingsSource,
    SettingsConfigDict,
)
from sqlalchemy.engine import make_url
from sqlalchemy.exc import ArgumentError

DEFAULT_CONFIG_FILE = "taskpin.toml"
ENV_PREFIX = "TASKPIN_"
DOTENV_FILE = ".env"


class OnApprove(StrEnum):
    NONE = "none"     # keep the branch
    MERGE = "merge"   # merge the task branch into the base branch
    PUSH = "push"     # push the task branch to a remote
    PULL_REQUEST = "pull_request"   # push it and open a pull request on GitHub


class RepoConfig(BaseModel):
    model_config = ConfigDict(extra="forbid", populate_by_name=True)

    path: Path
    base_branch: str = "main"
    on_approve: OnApprove = OnApprove.NONE
    remote: str = "origin"
    # Ready-to-run worktrees (orchestrator/worktree_setup.py): files copied from the checkout at
    # `path` into each new worktree (never committed by taskpin), argv lists run there before the
    # agent starts, and how many ports each live task gets from TASKPIN_PORT_BASE on.
    copy_files: list[str] = Field(default_factory=list, alias="copy")
    setup: list[list[str]] = Field(default_factory=list)
    setup_timeout_s: float = Field(default=600.0, gt=0)
    ports: int = Field(default=0, ge=0, le=1000)
    # Pull requests (on_approve = "pull_request"): "owner/name" on GitHub (default: read from the
    # remote's URL) and the API's base URL (default: TASKPIN_GITHUB_API_URL).
    github_repo: str | None = Field(default=None, pattern=r"^[A-Za-z0-9_.-]+/[A-Za-z0-9_.-]+$")
    github_api_url: str | None = None
    # Approval policy (orchestrator/policy.py): "allow Read", "deny Bash(rm -rf *)"..., in order.
    policy: list[str] = Field(default_factory=list)

    _policy = field_validator("policy")(lambda rules: _valid_rules(rules))

    @field_validator("copy_files")
    @classmethod
    def _relative_paths(cls, paths: list[str]) -> list[str]:
        for path in paths:
            parts = Path(path).parts
            if not path.strip() or Path(path).is_absolute() or ".." in parts or ".git" in parts:
                raise ValueError(f"{path!r} must be a path inside the repository, like '.env' or 'config/local.yml'")
        return paths

    @field_validator("setup")
    @classmethod
    def _argv_lists(cls, commands: list[list[str]]) -> list[list[str]]:
        for argv in commands:
            if not argv or not argv[0].strip():
                raise ValueError('each setup command is a non-empty argv list, like ["npm", "ci"]')
        return commands


class AgentConfig(BaseModel):
    """A named agent. `kind` picks the adapter; the other keys are that adapter's options."""

    model_config = ConfigDict(extra="allow")

    kind: str = "command"
    # The core's, for every kind (never passed to the adapter): the approval policy's rules,
    # read after the repository's.
    policy: list[str] = Field(default_factory=list)

    _policy = field_validator("policy")(lambda rules: _valid_rules(rules))

    @property
    def options(self) -> dict[str, Any]:
        return dict(self.model_extra or {})


CORE_AGENT_KEYS = ("kind", "policy")   # [agents.NAME] keys that are not the adapter's options


def _valid_rules(rules: list[str]) -> list[str]:
    from .policy import parse_rules

    parse_rules(rules)   # RuleError (a ValueError) names the bad rule and how to write it
    return rules


def _split_csv(value: Any) -> Any:
    if isinstance(value, str):
        return [part.strip() for part in value.replace(" ", ",").split(",") if part.strip()]
    return value


class Settings(BaseSettings):
    model_config = SettingsConfigDict(
        env_prefix=ENV_PREFIX,
        env_file=DOTENV_FILE,
        env_file_encoding="utf-8",
        env_ignore_empty=True,
        extra="ignore",
    )

    config: Path | None = Field(default=None, description="TOML file with repos and agents")
    database_url: str = "sqlite+aiosqlite:///./taskpin.db"
    workspaces_dir: Path = Path("./.taskpin/worktrees")
    log_dir: Path = Path("./.taskpin/logs")
    log_retention_days: float = 14.0
    log_tail_lines: int = 200
    keep_worktrees: bool = True
    worktree_retention_days: float = Field(default=7.0, gt=0)   # completed/failed tasks' worktrees
    port_base: int = Field(default=20000, ge=1024, le=65000)    # per-task port ranges start here

    max_concurrent_sessions: int = Field(default=4, ge=1)
    default_repo: str | None = None
    default_agent: str | None = None

    session_timeout_s: float = Field(default=3600.0, gt=0)      # wall clock per attempt
    idle_timeout_s: float = Field(default=600.0, gt=0)          # no agent event while not blocked
    intervention_reminder_s: float = Field(default=900.0, gt=0)
    intervention_timeout_s: float = Field(default=86400.0, gt=0)
    stop_grace_s: float = Field(default=5.0, ge=0)              # SIGTERM -> SIGKILL

    max_attempts: int = Field(default=3, ge=1)
    retry_backoff_s: float = Field(default=5.0, ge=0)
    retry_backoff_max_s: float = Field(default=120.0, ge=0)

    max_tokens_per_task: int | None = Field(default=None, ge=1)
    max_cost_per_task_usd: float | None = Field(default=None, gt=0)

    # This process's name among several on one database (shown on the cards of the tasks it
    # runs); default: host name and pid.
    worker_name: str | None = Field(default=None, min_length=1, max_length=100, pattern=r"^[A-Za-z0-9._@:-]+$")
    # How long a worker's lease on a running task lasts unrenewed (renewed every quarter of it):
    # another worker takes the tasks of a dead one over within about 1.25 times this.
    lease_ttl_s: float = Field(default=15.0, ge=1, le=600)

    approvers: Annotated[list[str], NoDecode] = Field(default_factory=list)
    allowed_users: Annotated[list[str], NoDecode] = Field(default_factory=list)

    # Pull requests: a token with write access to the repositories' contents and pull requests.
    # TASKPIN_GITHUB_TOKEN, else GITHUB_TOKEN from the environment (what `gh` and CI set).
    github_token: SecretStr | None = None
    github_api_url: str = "https://api.github.com"   # GitHub Enterprise: https://HOST/api/v3
    github_retries: int = Field(default=2, ge=0, le=10)   # for 5xx answers
    github_timeout_s: float = Field(default=30.0, gt=0)

    repos: dict[str, RepoConfig] = Field(default_factory=dict)
    agents: dict[str, AgentConfig] = Field(default_factory=dict)

    _split = field_validator("approvers", "allowed_users", mode="before")(_split_csv)

    @field_validator("github_token", mode="after")
    @classmethod
    def _github_token_fallback(cls, token: SecretStr | None) -> SecretStr | None:
        fallback = os.environ.get("GITHUB_TOKEN", "").strip()
        return token if token is not None or not fallback else SecretStr(fallback)

    @classmethod
    def settings_customise_sources(
        cls,
        settings_cls: type[BaseSettings],
        init_settings: PydanticBaseSettingsSource,
        env_settings: PydanticBaseSettingsSource,
        dotenv_settings: PydanticBaseSettingsSource,
        file_secret_settings: PydanticBaseSettingsSource,
    ) -> tuple[PydanticBaseSettingsSource, ...]:
        toml_path = config_file(init_settings().get("config"), dotenv_settings)
        toml = InitSettingsSource(settings_cls, load_toml(toml_path) if toml_path else {})
        return init_settings, env_settings, dotenv_settings, toml, file_secret_settings

    def repo(self, name: str | None) -> tuple[str, RepoConfig]:
        name = name or self.default_repo or (next(iter(self.repos)) if len(self.repos) == 1 else None)
        if not name or name not in self.repos:
            raise KeyError(name or "")
        return name, self.repos[name]

    def agent(self, name: str | None) -> tuple[str, AgentConfig]:
        name = name or self.default_agent or (next(iter(self.agents)) if len(self.agents) == 1 else None)
        if not name or name not in self.agents:
            raise KeyError(name or "")
        return name, self.agents[name]


def config_file(explicit: Any = None, dotenv_settings: PydanticBaseSettingsSource | None = None) -> Path | None:
    """The TOML file in use: an explicit one, TASKPIN_CONFIG (environment, then the .env file
    the settings read, if any), or ./taskpin.toml when it exists."""
    explicit = explicit or os.environ.get("TASKPIN_CONFIG")
    env_file = getattr(dotenv_settings, "env_file", None)
    if not explicit and isinstance(env_file, (str, Path)) and Path(env_file).is_file():
        try:
            explicit = dotenv_values(env_file).get("TASKPIN_CONFIG")
        except (OSError, ValueError):  # a broken .env is reported by `taskpin check`
            explicit = None
    if explicit:
        return Path(explicit)
    default = Path(DEFAULT_CONFIG_FILE)
    return default if default.is_file() else None


def load_toml(path: Path) -> dict[str, Any]:
    """The file's tables, with relative paths made relative to the file's folder.
    A missing file is empty (`taskpin check` says it is missing)."""
    if not path.is_file():
        return {}
    with path.open("rb") as fh:
        data = tomllib.load(fh)
    return resolve_relative_paths(data, path.resolve().parent)


PATH_KEYS = ("workspaces_dir", "log_dir")


def resolve_relative_paths(data: dict[str, Any], base: Path) -> dict[str, Any]:
    def resolved(value: Any) -> Any:
        if isinstance(value, str) and value and not Path(value).expanduser().is_absolute():
            return os.path.normpath(base / value)
        return value

    data = dict(data)
    for key in PATH_KEYS:
        if key in data:
            data[key] = resolved(data[key])
    if isinstance(data.get("repos"), dict):
        data["repos"] = {name: ({**repo, "path": resolved(repo["path"])} if isinstance(repo, dict) and "path" in repo
                                else repo) for name, repo in data["repos"].items()}
    if isinstance(data.get("database_url"), str):
        data["database_url"] = _resolve_sqlite_url(data["database_url"], base)
    return data


def _resolve_sqlite_url(url: str, base: Path) -> str:
    try:
        parsed = make_url(url)
    except ArgumentError:
        return url          # reported by `taskpin check`
    database = parsed.database
    if parsed.get_backend_name() != "sqlite" or not database or database == ":memory:" or database.startswith("file:"):
        return url
    if Path(database).is_absolute():
        return url
    return parsed.set(database=os.path.normpath(base / database)).render_as_string(hide_password=False)


def toml_keys() -> set[str]:
    """The top-level keys of taskpin.toml that are core settings."""
    return set(Settings.model_fields) - {"config"}


def env_names() -> set[str]:
    """The environment variables that are core settings."""
    return {ENV_PREFIX + name.upper() for name in Settings.model_fields}
