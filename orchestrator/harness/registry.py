"""Harness kinds by name: `build_harness` turns an agent's config into its adapter.

Adding a kind is one line in HARNESS_KINDS: "kind": "module.path:ClassName". The class is
imported only when an agent of that kind is built, so an adapter's dependencies stay
optional. A class is called as ``cls(config)`` with the agent's AgentConfig.
"""
from __future__ import annotations

import importlib
from collections.abc import Callable, Mapping
from typing import Any

from ..config import CORE_AGENT_KEYS, AgentConfig
from ..suggest import unknown_name
from .base import Harness
from .errors import HarnessConfigError
from .options import AgentOptions

HARNESS_KINDS: dict[str, str] = {
    "command": "orchestrator.harness.command:CommandHarness",
    "claude-code": "orchestrator.harness.claude_code:ClaudeCodeHarness",
    "acp": "orchestrator.harness.acp:AcpHarness",
    "codex": "orchestrator.harness.codex:CodexHarness",
}

# Each kind's options model (an AgentOptions subclass with extra="forbid").
OPTION_MODELS: dict[str, str] = {
    "command": "orchestrator.harness.command.options:CommandOptions",
    "claude-code": "orchestrator.harness.claude_code.options:ClaudeCodeOptions",
    "acp": "orchestrator.harness.acp.options:AcpOptions",
    "codex": "orchestrator.harness.codex.options:CodexOptions",
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
    factory: Callable[[AgentConfig], Harness] = _load(target)
    return factory


def _load(target: str) -> Any:
    module_name, _, attr = target.partition(":")
    return getattr(importlib.import_module(module_name), attr)


def options_model(kind: str) -> type[AgentOptions]:
    """The options model of agent kind `kind` (HarnessConfigError for an unknown kind)."""
    if kind not in OPTION_MODELS:
        harness_class(kind)   # raises the unknown-kind error
    model: type[AgentOptions] = _load(OPTION_MODELS[kind])
    return model


def validate_agent_options(kind: str, options: Mapping[str, Any]) -> list[tuple[str, str, str]]:
    """(key, what is wrong, how to fix it) for every problem with an agent's options: an
    unknown kind, a misspelt option (naming the closest valid one), a bad value. [] if fine."""
    if kind not in OPTION_MODELS:
        what, fix = unknown_name("agent kind", kind, OPTION_MODELS)
        return [("kind", what, fix)]
    return options_model(kind).problems({k: v for k, v in options.items() if k not in CORE_AGENT_KEYS})


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
