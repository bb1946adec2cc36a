"""Options of a `claude-code` agent ([agents.NAME] with kind = "claude-code")."""
from __future__ import annotations

from typing import Any, Literal

from pydantic import Field, field_validator

from ..options import ENV_DESCRIPTION, AgentOptions, check_choice, check_env

PERMISSION_MODES = ("default", "acceptEdits", "plan", "bypassPermissions", "dontAsk", "auto")


class ClaudeCodeOptions(AgentOptions):
    model: str | None = Field(None, description='model name, e.g. "claude-sonnet-4-5"; default: Claude Code\'s own')
    permission_mode: Literal["default", "acceptEdits", "plan", "bypassPermissions", "dontAsk", "auto"] = Field(
        "default", description="default | acceptEdits | plan | dontAsk | auto | bypassPermissions "
                               "(as root, bypassPermissions needs IS_SANDBOX=1 in env)")
    allowed_tools: list[str] = Field(default_factory=list, description=(
        'tools that run without asking, e.g. ["Read", "Bash(git:*)"]; everything else is asked in Slack'))
    disallowed_tools: list[str] = Field(default_factory=list, description="tools Claude may not use at all")
    max_turns: int | None = Field(None, description="stop after this many turns (a whole number >= 1)")
    max_budget_usd: float | None = Field(None, description="the SDK's own cost cap in USD (taskpin's per-task caps apply too)")
    env: dict[str, str] = Field(default_factory=dict, description=(
        ENV_DESCRIPTION + ", e.g. ANTHROPIC_API_KEY or ANTHROPIC_BASE_URL"))
    settings: str | None = Field(None, description="a Claude Code settings file (or inline JSON), passed to --settings")
    cli_path: str | None = Field(None, description="another Claude Code CLI instead of the SDK's bundled one")

    @field_validator("model", mode="before")
    @classmethod
    def _model(cls, value: Any) -> str | None:
        if value is not None and (not isinstance(value, str) or not value.strip()):
            raise ValueError(f'model must be a model name like "claude-sonnet-4-5", got {value!r}')
        return value

    @field_validator("permission_mode", mode="before")
    @classmethod
    def _mode(cls, value: Any) -> str:
        return check_choice("permission_mode", value, PERMISSION_MODES)

    @field_validator("allowed_tools", "disallowed_tools", mode="before")
    @classmethod
    def _tools(cls, value: Any, info: Any) -> list[str]:
        if value is None:
            return []
        if isinstance(value, str):
            return [part.strip() for part in value.split(",") if part.strip()]
        if isinstance(value, (list, tuple)) and all(isinstance(v, str) for v in value):
            return list(value)
        raise ValueError(f'{info.field_name} must be a list of tool names like ["Read", "Bash(git:*)"], got {value!r}')

    @field_validator("max_turns", mode="before")
    @classmethod
    def _turns(cls, value: Any) -> int | None:
        if value is not None and (isinstance(value, bool) or not isinstance(value, int) or value < 1):
            raise ValueError(f"max_turns must be a whole number >= 1, got {value!r}")
        return value

    @field_validator("max_budget_usd", mode="before")
    @classmethod
    def _budget(cls, value: Any) -> float | None:
        if value is not None and (isinstance(value, bool) or not isinstance(value, (int, float)) or value <= 0):
            raise ValueError(f"max_budget_usd must be a number > 0, got {value!r}")
        return None if value is None else float(value)

    @field_validator("env", mode="before")
    @classmethod
    def _env(cls, value: Any) -> dict[str, str]:
        return check_env(value)

    @field_validator("settings", "cli_path", mode="before")
    @classmethod
    def _paths(cls, value: Any, info: Any) -> str | None:
        what = "a Claude Code settings file" if info.field_name == "settings" else "the claude executable"
        if value is not None and (not isinstance(value, str) or not value.strip()):
            raise ValueError(f"{info.field_name} must be the path of {what}, got {value!r}")
        return value
