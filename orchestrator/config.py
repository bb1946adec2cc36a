"""Settings: environment variables, a .env file, and a TOML file for repositories and agents.

Precedence, highest first: explicit arguments, environment, .env, TOML, defaults.
"""
from __future__ import annotations

import os
from enum import StrEnum
from pathlib import Path
from typing import Annotated, Any

from pydantic import BaseModel, ConfigDict, Field, field_validator
from pydantic_settings import (
    BaseSettings,
    NoDecode,
    PydanticBaseSettingsSource,
    SettingsConfigDict,
    TomlConfigSettingsSource,
)

DEFAULT_CONFIG_FILE = "taskpin.toml"


class OnApprove(StrEnum):
    NONE = "none"     # keep the branch
    MERGE = "merge"   # merge the task branch into the base branch
    PUSH = "push"     # push the task branch to a remote


class RepoConfig(BaseModel):
    model_config = ConfigDict(extra="forbid")

    path: Path
    base_branch: str = "main"
    on_approve: OnApprove = OnApprove.NONE
    remote: str = "origin"


class AgentConfig(BaseModel):
    """A named agent. `kind` picks the adapter; the other keys are that adapter's options."""

    model_config = ConfigDict(extra="allow")

    kind: str = "command"

    @property
    def options(self) -> dict[str, Any]:
        return dict(self.model_extra or {})


def _split_csv(value: Any) -> Any:
    if isinstance(value, str):
        return [part.strip() for part in value.replace(" ", ",").split(",") if part.strip()]
    return value


class Settings(BaseSettings):
    model_config = SettingsConfigDict(
        env_prefix="TASKPIN_",
        env_file=".env",
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

    approvers: Annotated[list[str], NoDecode] = Field(default_factory=list)
    allowed_users: Annotated[list[str], NoDecode] = Field(default_factory=list)

    repos: dict[str, RepoConfig] = Field(default_factory=dict)
    agents: dict[str, AgentConfig] = Field(default_factory=dict)

    _split = field_validator("approvers", "allowed_users", mode="before")(_split_csv)

    @classmethod
    def settings_customise_sources(
        cls,
        settings_cls: type[BaseSettings],
        init_settings: PydanticBaseSettingsSource,
        env_settings: PydanticBaseSettingsSource,
        dotenv_settings: PydanticBaseSettingsSource,
        file_secret_settings: PydanticBaseSettingsSource,
    ) -> tuple[PydanticBaseSettingsSource, ...]:
        sources: list[PydanticBaseSettingsSource] = [init_settings, env_settings, dotenv_settings]
        toml_path = _toml_path(init_settings, dotenv_settings)
        if toml_path is not None:
            sources.append(TomlConfigSettingsSource(settings_cls, toml_file=toml_path))
        sources.append(file_secret_settings)
        return tuple(sources)

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


def _toml_path(init_settings: PydanticBaseSettingsSource, dotenv_settings: PydanticBaseSettingsSource) -> Path | None:
    explicit = init_settings().get("config") or os.environ.get("TASKPIN_CONFIG")
    if not explicit:
        try:
            explicit = dotenv_settings().get("config")
        except Exception:  # a broken .env is reported by pydantic itself
            explicit = None
    if explicit:
        return Path(explicit)
    default = Path(DEFAULT_CONFIG_FILE)
    return default if default.is_file() else None

