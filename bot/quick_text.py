"""`/task` in one line: `repo=api agent=codex branch=release-2 Fix the flaky login test after #12 #13`.

Pure parsing, no Slack and no core: options come first (`key=value`, in any order), the prompt
is the rest of the text as typed (new lines kept), and a trailing `after #N …` names the tasks
this one waits for. A leading word that only looks like an option (`x=1 breaks the parser`) is
part of the prompt unless its key is close to a real one, which is taken for a typo.
"""
from __future__ import annotations

import re
from dataclasses import dataclass

from orchestrator.suggest import closest

OPTIONS = ("repo", "agent", "branch")
SYNTAX = "/task [repo=NAME] [agent=NAME] [branch=BASE] what the agent should do [after #12 #13]"
EXAMPLE = "/task repo=api agent=codex branch=release-2 Fix the flaky login test"
MAX_DEPENDENCIES = 50

_LEADING_WORD = re.compile(r"\s*(\S+)")
_OPTION = re.compile(r"^([A-Za-z][A-Za-z0-9_-]*)=(.*)$", re.S)
_AFTER = re.compile(r"(?:^|\s)after\s+(#\d+(?:\s*(?:,|\band\b)?\s*#\d+)*)[\s.]*$", re.I)
_ID = re.compile(r"#(\d+)")


class QuickTextError(ValueError):
    """The line cannot be used as it is; the message says what to change (plain text)."""


@dataclass(frozen=True)
class QuickTask:
    prompt: str
    repo: str | None = None
    agent: str | None = None
    branch: str | None = None
    depends_on: tuple[int, ...] = ()


def parse(text: str) -> QuickTask:
    options: dict[str, str] = {}
    rest = text or ""
    while match := _LEADING_WORD.match(rest):
        option = _OPTION.match(match.group(1))
        if option is None:
            break
        key, value = option.group(1).lower(), option.group(2)
        if key not in OPTIONS:
            guess = closest(key, OPTIONS)
            if guess is None:
                break   # an ordinary word with '=' in it: the prompt starts here
            raise QuickTextError(f"unknown option {key}= (did you mean {guess}=?); the options are "
                                 f"{', '.join(o + '=' for o in OPTIONS)}")
        if not value:
            raise QuickTextError(f"{key}= needs a value, e.g. {key}={_EXAMPLE_VALUE[key]}")
        if key in options:
            raise QuickTextError(f"{key}= is given twice; keep one")
        options[key] = value
        rest = rest[match.end():]
    prompt, depends_on = _split_after(rest.strip())
    if not prompt:
        raise QuickTextError(f"say what the agent should do after the options, e.g. {EXAMPLE}")
    return QuickTask(prompt=prompt, depends_on=depends_on, **options)


_EXAMPLE_VALUE = {"repo": "api", "agent": "codex", "branch": "release-2"}


def _split_after(text: str) -> tuple[str, tuple[int, ...]]:
    match = _AFTER.search(text)
    if match is None:
        return text, ()
    ids = tuple(dict.fromkeys(int(n) for n in _ID.findall(match.group(1))))
    if any(n == 0 for n in ids):
        raise QuickTextError("task ids start at #1")
    if len(ids) > MAX_DEPENDENCIES:
        raise QuickTextError(f"a task can wait for at most {MAX_DEPENDENCIES} others")
    return text[:match.start()].rstrip(), ids


def choice_problem(kind: str, option: str, given: str | None, valid: list[str], default: str | None) -> str | None:
    """Why `given` (or nothing) does not pick one of `valid`; None when the core can decide.
    Plain text for an ephemeral reply."""
    plural = {"repository": "repositories"}.get(kind, kind + "s")
    if given is not None:
        if given in valid:
            return None
        if not valid:
            return f"no {kind} is configured yet; add one to taskpin.toml"
        guess = closest(given, valid)
        hint = f" (did you mean {option}={guess}?)" if guess else ""
        return f"there is no {kind} named {given!r}{hint}; the {plural}: {', '.join(valid)}"
    if default in valid or len(valid) == 1:
        return None
    if not valid:
        return f"no {kind} is configured yet; add one to taskpin.toml"
    return (f"several {plural} are configured and none is the default: pick one in the same line, e.g. "
            f"/task {option}={valid[0]} <what the agent should do> ({plural}: {', '.join(valid)})")
