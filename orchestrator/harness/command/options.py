"""Options of a `command` agent ([agents.NAME] with kind = "command")."""
from __future__ import annotations

from typing import Any, Literal

from pydantic import Field, field_validator

from ..options import (
    ENV_DESCRIPTION,
    STOP_GRACE_DESCRIPTION,
    AgentOptions,
    check_argv,
    check_bool,
    check_choice,
    check_env,
    check_seconds,
)

PROMPT_MODES = ("stdin", "arg", "stdin-text")
DEFAULT_STOP_GRACE_S = 5.0


class CommandOptions(AgentOptions):
    command: list[str] = Field(default_factory=list, description=(
        'the agent\'s argv, e.g. ["python3", "agent.py"] (a list, never a shell string); '
        "a relative path is resolved in the task's worktree"))
    prompt_via: Literal["stdin", "arg", "stdin-text"] = Field("stdin", description=(
        "stdin: a JSON prompt line; arg: the prompt as the last argument; "
        "stdin-text: the prompt as one plain line"))
    env: dict[str, str] = Field(default_factory=dict, description=ENV_DESCRIPTION)
    resume: bool = Field(False, description="true if the agent can continue a session it announced "
                                            "(started again with TASKPIN_RESUME_SESSION)")
    follow_up: bool | None = Field(None, description=(
        "humans may message the agent while it runs; default true, false for stdin-text"))
    stop_grace_s: float = Field(DEFAULT_STOP_GRACE_S, description=STOP_GRACE_DESCRIPTION)

    @field_validator("command", mode="before")
    @classmethod
    def _command(cls, value: Any) -> list[str]:
        return check_argv(value, example='["python", "agent.py"]')

    @field_validator("prompt_via", mode="before")
    @classmethod
    def _prompt_via(cls, value: Any) -> str:
        return check_choice("prompt_via", value, PROMPT_MODES)

    @field_validator("env", mode="before")
    @classmethod
    def _env(cls, value: Any) -> dict[str, str]:
        return check_env(value)

    @field_validator("resume", "follow_up", mode="before")
    @classmethod
    def _bools(cls, value: Any, info: Any) -> bool | None:
        return None if value is None and info.field_name == "follow_up" else check_bool(info.field_name, value)

    @field_validator("stop_grace_s", mode="before")
    @classmethod
    def _seconds(cls, value: Any, info: Any) -> float:
        return check_seconds(info.field_name, value)

    @property
    def takes_follow_ups(self) -> bool:
        return self.follow_up if self.follow_up is not None else self.prompt_via != "stdin-text"
