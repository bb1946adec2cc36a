"""The pieces of one task's run that are not the run itself: how it ended (Outcome), the
control messages in its inbox, its open questions, its usage meter, and the prompts it
composes. orchestrator.runner puts them together."""
from __future__ import annotations

import asyncio
from dataclasses import dataclass, field

from .config import Settings
from .harness.base import InterventionRequest
from .models import InterventionView, TaskView

RESTART_PROMPT = "taskpin was restarted while you were working. Continue the task where you left off."


@dataclass(frozen=True)
class Outcome:
    kind: str                 # finished | failed | cancelled | shutdown | lost (the lease)
    reason: str = ""
    retryable: bool = False   # for failed: worth another automatic attempt
    actor: str = "taskpin"
    expired: bool = False     # failed because nobody answered the agent in time


@dataclass(frozen=True)
class Poke:
    """Re-evaluate deadlines (the agent was sent a message)."""


@dataclass(frozen=True)
class Stop:
    outcome: Outcome


@dataclass(frozen=True)
class Answered:
    """A human answered one of this run's questions. Queued before the agent hears the answer,
    so the state change keeps the agent's order; `handed` resolves once the agent has it (the
    stored, answered question) or could not be given it (None: the question stays open)."""

    intervention_id: int
    actor: str
    handed: asyncio.Future[InterventionView | None] = field(compare=False)


@dataclass
class OpenQuestion:
    """An open question of the agent's: what it asked (for the answer) and how it is shown."""

    request: InterventionRequest
    view: InterventionView
    asked_at: float
    reminded: bool = False
    answering: bool = False   # an answer is on its way to the agent


class StreamEnded:
    pass


INBOX_LIMIT = 1000    # agent events waiting for the runner; beyond it the pump stops reading
OUTPUT_BATCH = 500    # output lines published (and logged) as one AgentOutput at most


class UsageMeter:
    """A run's usage totals, kept in memory for budget checks; the store gets the deltas through
    the world's UsageWriter, with every other run's, in one write per interval."""

    def __init__(self, input_tokens: int, output_tokens: int, cost_usd: float):
        self.totals: list[float] = [input_tokens, output_tokens, cost_usd]

    def add(self, input_tokens: int, output_tokens: int, cost_usd: float) -> None:
        for i, value in enumerate((input_tokens, output_tokens, cost_usd)):
            self.totals[i] += value


def workspace_mark(task: TaskView) -> str:
    """Who a branch belongs to: the task id and its creation time, which a reset database's
    new task of the same id does not share."""
    return f"{task.id}@{task.created_at.isoformat()}"


def compose_follow_up(original_prompt: str, message: str) -> str:
    """For agents that cannot resume a session: restate the task, then the new message."""
    return f"{original_prompt}\n\n---\nFollow-up from the reviewer:\n{message}"




def budget_outcome(settings: Settings, input_tokens: float, output_tokens: float, cost_usd: float) -> Outcome | None:
    """The failure a run's usage so far calls for, if it is over a cap."""
    tokens = int(input_tokens + output_tokens)
    if settings.max_tokens_per_task and tokens > settings.max_tokens_per_task:
        return Outcome("failed", f"budget exceeded: {tokens} tokens used, the cap is {settings.max_tokens_per_task}")
    if settings.max_cost_per_task_usd and cost_usd > settings.max_cost_per_task_usd:
        return Outcome("failed", f"budget exceeded: ${cost_usd:.2f} spent, the cap is "
                                 f"${settings.max_cost_per_task_usd:.2f}")
    return None


def keep_only_controls(inbox: asyncio.Queue[object]) -> None:
    """Drop what an ended session still had in a run's inbox; controls (a stop, answers) stay."""
    kept = [item for item in (inbox.get_nowait() for _ in range(inbox.qsize())) if isinstance(item, (Stop, Answered))]
    for item in kept:
        inbox.put_nowait(item)
