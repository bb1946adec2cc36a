"""Closest-name suggestions for misspelt keys, options and variables."""
from __future__ import annotations

import difflib
from collections.abc import Iterable


def closest(name: str, valid: Iterable[str]) -> str | None:
    """The valid name most like `name` (case-insensitive), or None when nothing is close."""
    choices = {v.lower(): v for v in valid}
    match = difflib.get_close_matches(name.lower(), list(choices), n=1, cutoff=0.6)
    return choices[match[0]] if match else None


def unknown_name(kind: str, name: str, valid: Iterable[str]) -> tuple[str, str]:
    """(what, fix) for an unknown key: names the closest valid one when there is one."""
    valid = sorted(valid)
    guess = closest(name, valid)
    what = f"unknown {kind} {name!r}" + (f" (did you mean {guess!r}?)" if guess else "")
    fix = (f"rename it to {guess!r}" if guess else "remove it") + f"; valid: {', '.join(valid)}"
    return what, fix
