"""Names and syntax in the configuration files: misspelt taskpin.toml keys, unknown TASKPIN_*
variables, .env lines that cannot be parsed. Every problem names the closest valid spelling.

The valid names come from the settings models themselves (the caller passes the union of the
core's and the bot's), so a new setting is valid everywhere the moment it exists.
"""
from __future__ import annotations

import io
import re
from collections.abc import Iterable, Mapping
from pathlib import Path

from dotenv.parser import parse_stream

from .check import Problem
from .suggest import unknown_name

# TASKPIN_* variables that are not settings but legitimate: set by taskpin for its agents (an
# agent that starts taskpin-aware tools passes them on), or read by its test suite and tools.
NOT_SETTINGS = {
    "TASKPIN_TASK_ID", "TASKPIN_ATTEMPT", "TASKPIN_ATTEMPT_TOKEN", "TASKPIN_PROMPT", "TASKPIN_WORKDIR",
    "TASKPIN_RESUME_SESSION",                       # orchestrator/harness/command.py, runner.py
    "TASKPIN_PORT_COUNT",                           # orchestrator/worktree_setup.py
    "TASKPIN_CRASH_AT",                             # orchestrator/crashpoints.py (kill -9 tests)
    "TASKPIN_AGENTS_PREFIX",                        # where the test suite keeps the agent CLIs
    "TASKPIN_FAKE_OPENAI_KEY",                      # tests/fakes
    "TASKPIN_TRACEBACK",                            # bot/cli.py: show the traceback of a failure
}
NOT_SETTINGS_PREFIXES = ("TASKPIN_TEST_",)          # TASKPIN_TEST_PG, TASKPIN_TEST_CODEX_SANDBOX...
PREFIXES = ("TASKPIN_", "SLACK_")
_TOKEN = re.compile(r"\b(xox[a-z]-|xapp-)\S+")


def dotenv_problems(path: Path) -> tuple[dict[str, str], list[Problem]]:
    """The .env file's variables, and a problem for each line that is not NAME=value."""
    if not path.is_file():
        return {}, []
    try:
        text = path.read_text(encoding="utf-8")
    except UnicodeDecodeError as exc:
        return {}, [Problem(str(path), f"is not UTF-8 text (byte {exc.start})", "save it as UTF-8")]
    except OSError as exc:
        return {}, [Problem(str(path), f"cannot be read ({exc.strerror})", "fix its permissions")]
    values: dict[str, str] = {}
    problems: list[Problem] = []
    for binding in parse_stream(io.StringIO(text)):
        if binding.error:
            line = binding.original.string.strip().splitlines()[0] if binding.original.string.strip() else ""
            shown = _TOKEN.sub(r"\1...", line.split("=", 1)[0])    # the name at most, never a value
            problems.append(Problem(f"{path.name} line {binding.original.line}", f"cannot be parsed: {shown[:60]!r}",
                                    "write it as NAME=value (quote values with spaces; close every quote)"))
        elif binding.key:
            values[binding.key] = binding.value or ""
    return values, problems


def name_problems(*, toml_file: Path | None, toml_data: Mapping[str, object] | None, toml_keys: Iterable[str],
                  env_names: Iterable[str], environ: Mapping[str, str], dotenv: Mapping[str, str],
                  dotenv_name: str = ".env") -> list[Problem]:
    """Unknown top-level keys of taskpin.toml; unknown TASKPIN_* in the environment; unknown
    TASKPIN_* and SLACK_* in .env (that file is taskpin's own)."""
    problems: list[Problem] = []
    keys = set(toml_keys)
    if toml_file is not None and toml_data:
        for key in toml_data:
            if key not in keys:
                what, fix = unknown_name("key", key, keys)
                problems.append(Problem(f"{toml_file.name}", what,
                                        _short(fix, "a setting's key is its name in .env.example in lower case, "
                                                    "without TASKPIN_")))
    valid = set(env_names)
    for source, names, prefixes in (("environment", environ, ("TASKPIN_",)), (dotenv_name, dotenv, PREFIXES)):
        for name in names:
            if not name.upper().startswith(prefixes) or name.upper() in valid or _not_a_setting(name.upper()):
                continue
            what, fix = unknown_name("variable", name, valid | NOT_SETTINGS)
            problems.append(Problem(f"{name} ({source})", what.replace(f" {name!r}", ""),
                                    _short(fix, "every setting is listed in .env.example")))
    return problems


def _not_a_setting(name: str) -> bool:
    return name in NOT_SETTINGS or name.startswith(NOT_SETTINGS_PREFIXES)


def _short(fix: str, where_listed: str) -> str:
    """unknown_name's fix lists every valid name; keep the rename, point at the docs for the rest."""
    return f"{fix.split('; valid:', 1)[0]} ({where_listed})"
