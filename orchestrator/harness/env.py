"""The environment an agent inherits: taskpin's own, minus taskpin's secrets and settings.

Agents run arbitrary code in the worktree; they never need the Slack tokens or the
database URL. An agent that does need a variable gets it through its `env` option.
"""
from __future__ import annotations

import os

_DROP_PREFIXES = ("SLACK_", "TASKPIN_")


def inherited_env() -> dict[str, str]:
    return {k: v for k, v in os.environ.items() if not k.startswith(_DROP_PREFIXES)}
