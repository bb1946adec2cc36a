"""Agent options and agent JSON, shared by the adapters: validation and coercion helpers.

The option helpers raise HarnessConfigError with the messages `taskpin check` shows; the
JSON helpers turn values an agent sent into what the normalized events hold.
"""
from __future__ import annotations

import json
import os
import shutil
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from ..config import AgentConfig
from .errors import HarnessConfigError

FOUND_NOWHERE = "install it, or put its absolute path in command"


# ---- options -----------------------------------------------------------------------------

def agent_options(config: AgentConfig | Mapping[str, Any]) -> dict[str, Any]:
    """An agent's options (a copy), without its `kind`."""
    options = config.options if isinstance(config, AgentConfig) else dict(config)
    options.pop("kind", None)
    return options


def reject_unknown(options: Mapping[str, Any], known: Sequence[str], kind: str) -> None:
    unknown = sorted(set(options) - set(known))
    if unknown:
        raise HarnessConfigError(f"unknown option{'s' if len(unknown) > 1 else ''} {', '.join(unknown)} for a "
                                 f"{kind} agent; known: {', '.join(known)}")


def argv_option(options: Mapping[str, Any], *, example: str, default: Sequence[str] = (),
                required: bool = False) -> list[str]:
    """The `command` option: an argv list (never a shell string). `example` is shown in the
    error, e.g. '["python", "agent.py"]'; with `required`, an empty list is an error too."""
    command = options.get("command", list(default))
    if isinstance(command, str):
        raise HarnessConfigError(
            f"command must be a list of arguments, not a shell string: write "
            f"command = {json.dumps(command.split() or list(default) or ['path/to/agent'])} "
            f"(taskpin never runs agents through a shell)"
        )
    if command is None and not required:
        command = []
    if (not isinstance(command, (list, tuple)) or not all(isinstance(a, str) for a in command)
            or (required and not command)):
        raise HarnessConfigError(f"command must be a list of strings like {example}, got {command!r}")
    return list(command)


def env_option(options: Mapping[str, Any]) -> dict[str, str]:
    env = options.get("env") or {}
    if not isinstance(env, Mapping):
        raise HarnessConfigError(f"env must be a table of NAME = value, got {env!r}")
    return {str(k): str(v) for k, v in env.items()}


def bool_option(options: Mapping[str, Any], name: str, default: bool) -> bool:
    value = options.get(name, default)
    if not isinstance(value, bool):
        raise HarnessConfigError(f"{name} must be true or false, got {value!r}")
    return value


def seconds_option(options: Mapping[str, Any], name: str, default: float) -> float:
    value = options.get(name, default)
    if isinstance(value, bool) or not isinstance(value, (int, float)) or value < 0:
        raise HarnessConfigError(f"{name} must be a number >= 0, got {value!r}")
    return float(value)


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
