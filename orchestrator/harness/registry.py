"""Harness kinds by name: `build_harness` turns an agent's config into its adapter.

Adding a kind is one line in HARNESS_KINDS: "kind": "module.path:ClassName". The class is
imported only when an agent of that kind is built, so an adapter's dependencies stay
optional. A class is called as ``cls(config)`` with the agent's AgentConfig.
"""
from __future__ import annotations

import importlib
from collections.abc import Callable

from ..config import AgentConfig
from .base import Harness
from .errors import HarnessConfigError

HARNESS_KINDS: dict[str, str] = {
    "command": "orchestrator.harness.command:CommandHarness",
    "claude-code": "orchestrator.harness.claude_code:ClaudeCodeHarness",
    "acp": "orchestrator.harness.acp:AcpHarness",
    "codex": "orchestrator.harness.codex:CodexHarness",
}


def available_kinds() -> list[str]:
    return sorted(HARNESS_KINDS)


def harness_class(kind: str) -> Callable[[AgentConfig], Harness]:
    try:
        target = HARNESS_KINDS[kind]
    except KeyError:
        raise HarnessConfigError(
            f"unknown agent kind {kind!r}; known kinds: {', '.join(available_kinds())}"
        ) from None
    module_name, _, attr = target.partition(":")
    return getattr(importlib.import_module(module_name), attr)


def build_harness(name: str, config: AgentConfig) -> Harness:
    """The adapter for agent `name` ([agents.<name>] in the TOML file).

    Raises HarnessConfigError (a ValueError) naming the agent for an unknown kind or an
    unusable option, e.g. a shell string where an argv list is required.
    """
    try:
        cls = harness_class(config.kind)
        return cls(config)
    except HarnessConfigError as exc:
        raise HarnessConfigError(f"agent {name!r}: {exc}") from exc
