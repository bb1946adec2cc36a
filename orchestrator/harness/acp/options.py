"""Options of an `acp` agent ([agents.NAME] with kind = "acp")."""
from __future__ import annotations

from typing import Any

from pydantic import Field, field_validator

from ..options import (
    ENV_DESCRIPTION,
    STOP_GRACE_DESCRIPTION,
    AgentOptions,
    check_argv,
    check_bool,
    check_env,
    check_seconds,
)

DEFAULT_STOP_GRACE_S = 5.0
DEFAULT_STARTUP_TIMEOUT_S = 60.0


class AcpOptions(AgentOptions):
    command: list[str] = Field(default_factory=list, description=(
        'the agent\'s argv, e.g. ["npx", "-y", "@agentclientprotocol/claude-agent-acp"] or ["gemini", "--acp"]'))
    mode: str | None = Field(None, description="session mode set after the session is created (session/set_mode)")
    env: dict[str, str] = Field(default_factory=dict, description=ENV_DESCRIPTION)
    follow_up: bool = Field(True, description="replies while the agent works are queued as its next prompt")
    resume: bool = Field(True, description="session/load after a restart, when the agent advertises loadSession")
    stop_grace_s: float = Field(DEFAULT_STOP_GRACE_S, description=STOP_GRACE_DESCRIPTION)
    startup_timeout_s: float = Field(DEFAULT_STARTUP_TIMEOUT_S, description=(
        "seconds for initialize + session/new (or load) + set_mode (0: the default)"))

    @field_validator("command", mode="before")
    @classmethod
    def _command(cls, value: Any) -> list[str]:
        return check_argv(value, example='["gemini", "--acp"]')

    @field_validator("mode", mode="before")
    @classmethod
    def _mode(cls, value: Any) -> str | None:
        if value is not None and (not isinstance(value, str) or not value.strip()):
            raise ValueError(f'mode must be a session mode id like "default", got {value!r}')
        return value.strip() if isinstance(value, str) else None

    @field_validator("env", mode="before")
    @classmethod
    def _env(cls, value: Any) -> dict[str, str]:
        return check_env(value)

    @field_validator("follow_up", "resume", mode="before")
    @classmethod
    def _bools(cls, value: Any, info: Any) -> bool:
        return check_bool(info.field_name, value)

    @field_validator("stop_grace_s", "startup_timeout_s", mode="before")
    @classmethod
    def _seconds(cls, value: Any, info: Any) -> float:
        seconds = check_seconds(info.field_name, value)
        return seconds or DEFAULT_STARTUP_TIMEOUT_S if info.field_name == "startup_timeout_s" else seconds
