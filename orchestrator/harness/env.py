"""The environment an agent inherits: taskpin's own, minus taskpin's secrets and settings.

Agents run arbitrary code in the worktree; they never need the Slack tokens or the
database URL. An agent that does need a variable gets it through its `env` option.
"""
from __future__ import annotations

import os
from collections.abc import Mapping

_DROP_PREFIXES = ("SLACK_", "TASKPIN_")


def inherited_env() -> dict[str, str]:
    return {k: v for k, v in os.environ.items() if not k.startswith(_DROP_PREFIXES)}


def agent_env(*layers: Mapping[str, object]) -> dict[str, str]:
    """inherited_env() with each layer set on top of it, later layers winning (values as str)."""
    env = inherited_env()
    for layer in layers:
        env.update({str(k): str(v) for k, v in layer.items()})
    return env
