"""The README's option tables, made from the options models so they cannot drift.

    python -m orchestrator.harness.docs README.md     # rewrite the tables in place

Each table sits between ``<!-- agent-options: KIND -->`` and ``<!-- /agent-options -->``;
tests/test_harness_options.py fails when one differs from what this module makes.
"""
from __future__ import annotations

import json
import re
import sys
from pathlib import Path
from typing import Any

from pydantic_core import PydanticUndefined

from .registry import OPTION_MODELS, options_model

BLOCK = re.compile(r"(<!-- agent-options: (?P<kind>[\w-]+) -->\n)(?P<body>.*?)(<!-- /agent-options -->)", re.S)


def _default(field: Any) -> str:
    if field.default_factory is not None:
        value = field.default_factory()
    elif field.default is PydanticUndefined:
        return "required"
    else:
        value = field.default
    if value is None:
        return "—"
    if isinstance(value, bool):
        return f"`{str(value).lower()}`"
    if isinstance(value, float) and value.is_integer():
        value = int(value)
    if isinstance(value, dict) and not value:
        return "`{}`"
    return f"`{json.dumps(value)}`"


def options_table(kind: str) -> str:
    """The markdown table of agent kind `kind`'s options (kind itself excluded)."""
    rows = ["| option | default | meaning |", "|---|---|---|"]
    for name, field in options_model(kind).model_fields.items():
        meaning = (field.description or "").replace("|", "\\|")
        rows.append(f"| `{name}` | {_default(field)} | {meaning} |")
    return "\n".join(rows) + "\n"


def render(text: str) -> str:
    """`text` with every agent-options block replaced by the current table."""
    return BLOCK.sub(lambda m: m.group(1) + options_table(m.group("kind")) + m.group(4), text)


def blocks(text: str) -> dict[str, str]:
    """kind -> the table body found in `text`."""
    return {m.group("kind"): m.group("body") for m in BLOCK.finditer(text)}


def main(argv: list[str]) -> int:
    path = Path(argv[0] if argv else "README.md")
    text = path.read_text()
    missing = sorted(set(OPTION_MODELS) - set(blocks(text)))
    if missing:
        print(f"{path}: no agent-options block for {', '.join(missing)}", file=sys.stderr)
        return 1
    path.write_text(render(text))
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
