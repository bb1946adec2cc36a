"""Agent options and agent JSON, shared by the adapters.

AgentOptions is the base of every adapter's options model (pydantic, extra="forbid"); the
check_* validators give the messages `taskpin check` shows. The JSON helpers turn values an
agent sent into what the normalized events hold.
"""
from __future__ import annotations

import json
import os
import shutil
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any, Self

from pydantic import BaseModel, ConfigDict, ValidationError

from ..config import CORE_AGENT_KEYS, AgentConfig
from ..suggest import closest, unknown_name
from .errors import HarnessConfigError

FOUND_NOWHERE = "install it, or put its absolute path in command"


# ---- options: one pydantic model per agent kind ---------------------------------------

class AgentOptions(BaseModel):
    """The options of one agent kind ([agents.NAME] without `kind`). Subclasses declare each
    option as a field with a description (the README's option tables are made from them);
    an unknown key is refused with the closest valid one."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    @classmethod
    def problems(cls, options: Mapping[str, Any]) -> list[tuple[str, str, str]]:
        """(key, what is wrong, how to fix it) for each bad option; [] when they are fine."""
        try:
            cls.model_validate(dict(options))
        except ValidationError as exc:
            return [_problem(cls, err) for err in exc.errors()]
        return []

    @classmethod
    def parse(cls, config: AgentConfig | Mapping[str, Any]) -> Self:
        """The options, or HarnessConfigError naming every bad one."""
        try:
            return cls.model_validate(agent_options(config))
        except ValidationError as exc:
            raise HarnessConfigError("; ".join(what for _k, what, _f in
                                               (_problem(cls, e) for e in exc.errors()))) from None


def _problem(model: type[BaseModel], err: Any) -> tuple[str, str, str]:
    key = ".".join(str(part) for part in err["loc"]) or "options"
    if err["type"] == "extra_forbidden":
        what, fix = unknown_name("option", key, model.model_fields)
        return key, what, fix
    message = err["msg"].removeprefix("Value error, ")
    what = message if message.startswith(key.split(".")[0]) else f"{key}: {message}"
    field = model.model_fields.get(key.split(".")[0])
    fix = f"{key}: {field.description}" if field is not None and field.description else "see the README's Agents section"
    return key, what, fix


def agent_options(config: AgentConfig | Mapping[str, Any]) -> dict[str, Any]:
    """An agent's options (a copy), without its `kind`."""
    options = config.options if isinstance(config, AgentConfig) else dict(config)
    for key in CORE_AGENT_KEYS:   # the core's keys (kind, policy), not the adapter's
        options.pop(key, None)
    return options


def check_argv(command: Any, *, example: str, default: Sequence[str] = (), required: bool = False) -> list[str]:
    """The `command` option: an argv list (never a shell string). `example` is shown in the
    error, e.g. '["python", "agent.py"]'; with `required`, an empty list is an error too."""
    if isinstance(command, str):
        raise ValueError(
            f"command must be a list of arguments, not a shell string: write "
            f"command = {json.dumps(command.split() or list(default) or ['path/to/agent'])} "
            f"(taskpin never runs agents through a shell)"
        )
    if command is None and not required:
        command = []
    if (not isinstance(command, (list, tuple)) or not all(isinstance(a, str) for a in command)
            or (required and not command)):
        raise ValueError(f"command must be a list of strings like {example}, got {command!r}")
    return list(command)


def check_env(env: Any) -> dict[str, str]:
    env = env or {}
    if not isinstance(env, Mapping):
        raise ValueError(f"env must be a table of NAME = value, got {env!r}")
    return {str(k): str(v) for k, v in env.items()}


def check_bool(name: str, value: Any) -> bool:
    if not isinstance(value, bool):
        raise ValueError(f"{name} must be true or false, got {value!r}")
    return value


def check_seconds(name: str, value: Any) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)) or value < 0:
        raise ValueError(f"{name} must be a number >= 0, got {value!r}")
    return float(value)


def check_choice(name: str, value: Any, choices: Sequence[str], hint: str = "") -> str:
    """One of `choices`; the error names them and the closest one."""
    if isinstance(value, str) and value in choices:
        return value
    guess = closest(value, choices) if isinstance(value, str) else None
    raise ValueError(f"{name} must be one of {', '.join(choices)}, got {value!r}"
                     + (f" (did you mean {guess!r}?)" if guess and not hint else "") + hint)


def check_name(name: str, value: Any, example: str) -> str | None:
    """An optional non-empty string option (a model name, a mode id...)."""
    if value is None:
        return None
    if not isinstance(value, str) or not value.strip():
        raise ValueError(f"{name} must be {example}, got {value!r}")
    return value.strip()


ENV_DESCRIPTION = "extra environment for the agent (a table NAME = value); taskpin's own SLACK_*/TASKPIN_* never reach it"
STOP_GRACE_DESCRIPTION = "seconds between SIGTERM and SIGKILL when the agent's process group is stopped"


def executable_problem(exe: str, env: Mapping[str, str], *, interpreter: str | None = None,
                       not_found: str = FOUND_NOWHERE) -> str | None:
    """Why `exe` (command[0]) cannot run, for `taskpin check`; None if it looks fine. A relative
    path is resolved in the task's worktree at run time, so it is not checked."""
    if not exe:
        return "command[0] is empty: it must name the executable to run"
    if os.sep in exe:
        path = Path(exe).expanduser()
        if not path.is_absolute():
            return None
        if not path.exists():
            return f"executable {exe} does not exist: fix the path in command"
        if path.is_dir() or not os.access(path, os.X_OK):
            hint = (f': chmod +x it, or run it through an interpreter (command = ["{interpreter}", "{exe}"])'
                    if interpreter else "")
            return f"{exe} is not an executable file{hint}"
        return None
    search_path = env.get("PATH", os.environ.get("PATH", os.defpath))
    if shutil.which(exe, path=search_path) is None:
        return f"executable {exe!r} was not found on PATH: {not_found}"
    return None


# ---- values from an agent's JSON ---------------------------------------------------------

def require_str(value: Any) -> str:
    if not isinstance(value, str):
        raise TypeError("expected a string")
    return value


def json_text(value: Any) -> str:
    """A display string from any JSON value (objects are shown as compact JSON)."""
    if value is None:
        return ""
    if isinstance(value, str):
        return value
    return json.dumps(value, ensure_ascii=False, separators=(",", ":"))


def require_count(value: Any) -> int:
    """A token count (negative counts as 0); TypeError for anything but a number."""
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise TypeError("expected a number")
    return max(0, int(value))


def require_cost(value: Any) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise TypeError("expected a number")
    return max(0.0, float(value))


def count_or_zero(value: Any) -> int:
    """A token count from a lenient source: anything but a number counts as 0."""
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        return 0
    return max(0, int(value))


def taskpin_version() -> str:
    """taskpin's version for an agent protocol's clientInfo ("0" when not installed)."""
    try:
        from importlib.metadata import version  # noqa: PLC0415

        return version("taskpin")
    except Exception:  # noqa: BLE001
        return "0"
