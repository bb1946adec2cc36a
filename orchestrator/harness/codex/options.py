"""Options of a `codex` agent ([agents.NAME] with kind = "codex")."""
from __future__ import annotations

import os
from collections.abc import Mapping
from typing import Any, Literal

from pydantic import Field, field_validator

from ..options import (
    ENV_DESCRIPTION,
    STOP_GRACE_DESCRIPTION,
    AgentOptions,
    check_argv,
    check_choice,
    check_env,
    check_name,
    check_seconds,
)

DEFAULT_COMMAND = ("codex", "app-server")
APPROVAL_POLICIES = ("untrusted", "on-request", "never")
SANDBOX_MODES = ("read-only", "workspace-write", "danger-full-access")
DEFAULT_STOP_GRACE_S = 5.0
DEFAULT_STARTUP_TIMEOUT_S = 60.0


class CodexOptions(AgentOptions):
    command: list[str] = Field(default_factory=lambda: list(DEFAULT_COMMAND), description=(
        "argv of the app-server (a list, never a shell string)"))
    codex_home: str | None = Field(None, description=(
        "CODEX_HOME for the agent (config.toml, auth, sessions); default: inherited"))
    model: str | None = Field(None, description="model name; default: Codex's own config")
    model_provider: str | None = Field(None, description=(
        "a provider id from Codex's config.toml; default: Codex's own config"))
    approval_policy: Literal["untrusted", "on-request", "never"] | dict[str, Any] = Field(
        "on-request", description=(
            "untrusted (ask for every command not known to be read-only) | on-request | never, "
            "or a table {granular = {...}}"))
    sandbox: Literal["read-only", "workspace-write", "danger-full-access"] = Field(
        "workspace-write", description="read-only | workspace-write | danger-full-access")
    config: dict[str, Any] = Field(default_factory=dict, description=(
        "extra Codex config overrides for the thread (a table, dotted keys allowed)"))
    env: dict[str, str] = Field(default_factory=dict, description=ENV_DESCRIPTION)
    stop_grace_s: float = Field(DEFAULT_STOP_GRACE_S, description=STOP_GRACE_DESCRIPTION)
    startup_timeout_s: float = Field(DEFAULT_STARTUP_TIMEOUT_S, description=(
        "seconds the app-server may take to answer initialize and the thread start (0: the default)"))

    @field_validator("command", mode="before")
    @classmethod
    def _command(cls, value: Any) -> list[str]:
        return check_argv(value, example='["codex", "app-server"]', default=DEFAULT_COMMAND, required=True)

    @field_validator("codex_home", mode="before")
    @classmethod
    def _home(cls, value: Any) -> str | None:
        if value is not None and (not isinstance(value, (str, os.PathLike)) or not str(value)):
            raise ValueError(f"codex_home must be a directory path, got {value!r}")
        return None if value is None else str(value)

    @field_validator("model", "model_provider", mode="before")
    @classmethod
    def _names(cls, value: Any, info: Any) -> str | None:
        if value is not None and (not isinstance(value, str) or not value):
            raise ValueError(f"{info.field_name} must be a non-empty string, got {value!r}")
        return check_name(info.field_name, value, "a non-empty string")

    @field_validator("approval_policy", mode="before")
    @classmethod
    def _policy(cls, value: Any) -> Any:
        if isinstance(value, Mapping):
            if set(value) != {"granular"} or not isinstance(value["granular"], Mapping):
                raise ValueError("a table approval_policy must be {granular = {...}}")
            return {"granular": dict(value["granular"])}
        hint = ' ("on-failure" is gone in this Codex version: use "on-request")' if value == "on-failure" else ""
        return check_choice("approval_policy", value, APPROVAL_POLICIES, hint)

    @field_validator("sandbox", mode="before")
    @classmethod
    def _sandbox(cls, value: Any) -> str:
        return check_choice("sandbox", value, SANDBOX_MODES)

    @field_validator("config", mode="before")
    @classmethod
    def _config(cls, value: Any) -> dict[str, Any]:
        value = value or {}
        if not isinstance(value, Mapping):
            raise ValueError(f"config must be a table of Codex settings, got {value!r}")
        return dict(value)

    @field_validator("env", mode="before")
    @classmethod
    def _env(cls, value: Any) -> dict[str, str]:
        return check_env(value)

    @field_validator("stop_grace_s", "startup_timeout_s", mode="before")
    @classmethod
    def _seconds(cls, value: Any, info: Any) -> float:
        seconds = check_seconds(info.field_name, value)
        return seconds or DEFAULT_STARTUP_TIMEOUT_S if info.field_name == "startup_timeout_s" else seconds
