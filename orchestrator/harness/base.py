"""The adapter protocol every agent harness implements, and its normalized events.

An adapter turns one agent's own protocol into these events and the core's answers back
into that protocol. The core never sees anything harness-specific.
"""
from __future__ import annotations

from collections.abc import AsyncIterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Protocol, runtime_checkable

from ..models import Answer, InterventionKind, Option

# ---- normalized events -------------------------------------------------------------

@dataclass(frozen=True)
class OutputText:
    text: str


@dataclass(frozen=True)
class ToolActivity:
    tool: str
    detail: str = ""


@dataclass(frozen=True)
class InterventionRequest:
    request_id: str                      # the harness's own id, echoed back in answer()
    kind: InterventionKind
    prompt: str
    options: tuple[Option, ...] = ()
    tool: str | None = None
    detail: str | None = None
    multi_select: bool = False


@dataclass(frozen=True)
class Usage:
    """Usage since the previous Usage event of this session (deltas, not totals)."""

    input_tokens: int = 0
    output_tokens: int = 0
    cost_usd: float = 0.0


@dataclass(frozen=True)
class SessionIdAssigned:
    """The harness's own session id, stored so the session can be resumed after a restart."""

    session_id: str


@dataclass(frozen=True)
class Finished:
    summary: str = ""


@dataclass(frozen=True)
class Failed:
    error: str
    retryable: bool = True   # a crash or bad exit is worth another attempt; a refusal is not


HarnessEvent = OutputText | ToolActivity | InterventionRequest | Usage | SessionIdAssigned | Finished | Failed


# ---- what the core gives an adapter --------------------------------------------------

@dataclass(frozen=True)
class SessionSpec:
    task_id: int
    workdir: Path
    prompt: str
    attempt: int = 1
    env: Mapping[str, str] = field(default_factory=dict)   # extra environment from the core
    resume_session_id: str | None = None                    # set when resuming
    log_path: Path | None = None                            # the adapter may append raw stderr here


@runtime_checkable
class AgentSession(Protocol):
    """One live conversation with an agent."""

    @property
    def pid(self) -> int | None: ...            # the process group leader, for recovery

    @property
    def supports_follow_up(self) -> bool: ...   # can send() reach the agent while it runs?

    def events(self) -> AsyncIterator[HarnessEvent]:
        """Normalized events until Finished or Failed (then the iterator ends)."""
        ...

    async def answer(self, request_id: str, answer: Answer, request: InterventionRequest) -> None: ...

    async def send(self, text: str) -> None:
        """A follow-up message from a human while the agent runs."""
        ...

    async def interrupt(self) -> None:
        """Stop the current turn, keeping the session for a follow-up.

        The same for every adapter: requests the agent was waiting on are withdrawn (answering
        one raises HarnessError), the agent is asked to end its turn, and then a follow-up
        queued with send() runs as the next turn; with none queued, events() ends with
        Failed("interrupted by taskpin", retryable=False). Where the agent takes follow-ups
        after that (supports_follow_up), send() starts a new turn; a command agent's turn is
        its process, so for it the interrupt ends the session. stop() still releases it.
        Never raises for an agent that has already ended.
        """
        ...

    async def stop(self) -> None:
        """End the session and everything it started (its process group, and processes it
        started outside it). Safe to call twice and concurrently; the final event is queued
        if there was none yet. A cancelled stop re-raises CancelledError; call it again."""
        ...


@runtime_checkable
class Harness(Protocol):
    kind: str

    @property
    def supports_resume(self) -> bool: ...

    async def start(self, spec: SessionSpec) -> AgentSession: ...

    async def resume(self, spec: SessionSpec) -> AgentSession:
        """Continue spec.resume_session_id with spec.prompt as the next message."""
        ...

    def check(self) -> list[str]:
        """Problems with this agent's configuration (executable missing...), for `taskpin check`."""
        ...
