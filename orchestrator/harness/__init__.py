from .base import (
    AgentSession,
    Failed,
    Finished,
    Harness,
    HarnessEvent,
    InterventionRequest,
    OutputText,
    SessionIdAssigned,
    SessionSpec,
    ToolActivity,
    Usage,
)
from .errors import HarnessConfigError, HarnessError
from .registry import HARNESS_KINDS, available_kinds, build_harness

__all__ = [
    "AgentSession", "Failed", "Finished", "Harness", "HarnessConfigError", "HarnessError",
    "HarnessEvent", "HARNESS_KINDS", "InterventionRequest", "OutputText", "SessionIdAssigned",
    "SessionSpec", "ToolActivity", "Usage", "available_kinds", "build_harness",
]
