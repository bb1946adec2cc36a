"""Errors raised by harness adapters and the harness registry."""
from __future__ import annotations


class HarnessError(Exception):
    """An adapter could not do what was asked (start an agent, reach a dead one...)."""


class HarnessConfigError(HarnessError, ValueError):
    """An agent's configuration is unusable (unknown kind, a shell string as command...)."""
