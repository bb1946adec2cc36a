"""taskpin's runtime-agnostic core. This module is its public API: the Slack layer (or any
other surface) uses only what is exported here."""
from .config import AgentConfig, OnApprove, RepoConfig, Settings
from .coordination import DatabaseInUse, Lease
from .coordination.node import Node, Role
from .engine import Orchestrator
from .errors import ActionRefused, InvalidInput, NotAllowed, TaskNotFound, TaskpinError
from .events import (
    AgentOutput,
    AnswerNotDelivered,
    AttemptFailed,
    DependencyFailed,
    Event,
    EventBus,
    InterventionReminder,
    InterventionRequested,
    InterventionResolved,
    PolicyDecided,
    Subscription,
    TaskCreated,
    TaskNotice,
    TaskStateChanged,
    TaskUpdated,
    UsageReported,
)
from .models import (
    Answer,
    DiffSummary,
    InterventionKind,
    InterventionStatus,
    InterventionView,
    Option,
    PolicyRuleView,
    TaskView,
    TransitionRecord,
)
from .outbox import Outbox, OutboxItem, OutboxStatus
from .states import STATE_ORDER, TRANSITIONS, IllegalTransition, TaskState
from .store import migrate_database

__all__ = [
    "DatabaseInUse", "Lease", "Node", "Role",
    "ActionRefused", "AgentConfig", "AgentOutput", "AnswerNotDelivered", "Answer", "AttemptFailed", "DiffSummary",
    "Event", "EventBus", "Subscription",
    "IllegalTransition", "InterventionKind", "InterventionReminder", "InterventionRequested", "InterventionResolved",
    "InterventionStatus", "InterventionView", "InvalidInput", "NotAllowed", "OnApprove", "Option", "Orchestrator",
    "RepoConfig", "STATE_ORDER", "Settings", "TRANSITIONS", "TaskCreated", "TaskNotice", "TaskNotFound", "TaskState",
    "TaskStateChanged", "TaskUpdated", "TaskView", "TaskpinError", "TransitionRecord", "UsageReported",
    "Outbox", "OutboxItem", "OutboxStatus", "migrate_database", "PolicyDecided", "PolicyRuleView", "DependencyFailed",
]
