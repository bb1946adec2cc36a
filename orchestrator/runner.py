"""One task's run: worktree, agent session, attempts with retries, timeouts, budget, result.

A TaskRunner lives from the moment a task leaves the queue until it reaches
awaiting_review or failed (or taskpin shuts down). It is the only writer of its task's
state while it runs, except for answers (blocked -> in_progress), which the core applies.
"""
from __future__ import annotations

import asyncio
import logging
import time
from dataclasses import dataclass
from typing import TYPE_CHECKING

from .events import AgentOutput, AttemptFailed, InterventionRequested, InterventionResolved, TaskUpdated
from .harness.base import (
    AgentSession,
    Failed,
    Finished,
    Harness,
    InterventionRequest,
    OutputText,
    SessionIdAssigned,
    SessionSpec,
    ToolActivity,
    Usage,
)
from .models import InterventionStatus, InterventionView, TaskView
from .states import IllegalTransition, TaskState
from .store.tables import utcnow

if TYPE_CHECKING:
    from .engine import Orchestrator

log = logging.getLogger(__name__)
S = TaskState

RESTART_PROMPT = "taskpin was restarted while you were working. Continue the task where you left off."


@dataclass(frozen=True)
class Outcome:
    kind: str                 # finished | failed | cancelled | shutdown
    reason: str = ""
    retryable: bool = False   # for failed: worth another automatic attempt
    actor: str = "taskpin"
    expired: bool = False     # failed because nobody answered the agent in time


@dataclass(frozen=True)
class _Poke:
    """Re-evaluate deadlines (an intervention was answered)."""


@dataclass(frozen=True)
class _Stop:
    outcome: Outcome


@dataclass(frozen=True)
class _Answered:
    """A human answered one of this run's interventions (already stored and sent)."""

    intervention: InterventionView
    actor: str


class _StreamEnded:
    pass


INBOX_LIMIT = 1000    # agent events waiting for the runner; beyond it the pump stops reading
OUTPUT_BATCH = 500    # output lines published (and logged) as one AgentOutput at most


class UsageMeter:
    """A run's usage totals, kept in memory for budget checks; the store gets the deltas through
    the core's UsageWriter, with every other run's, in one write per interval."""

    def __init__(self, input_tokens: int, output_tokens: int, cost_usd: float):
        self.totals = [input_tokens, output_tokens, cost_usd]

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


class TaskRunner:
    def __init__(self, core: "Orchestrator", task_id: int):
        self.core = core
        self.task_id = task_id
        self.session: AgentSession | None = None
        self.requests: dict[int, InterventionRequest] = {}   # pending intervention id -> request
        self.attempt_id: int | None = None
        self.attempt_number = 0
        self._inbox: asyncio.Queue = asyncio.Queue()   # agent events (bounded by the pump) and controls
        self._room = asyncio.Event()
        self._stop_outcome: Outcome | None = None
        self.usage = UsageMeter(0, 0, 0.0)
        self._output: list[str] = []   # output lines read, not yet logged and published
        # pending intervention id -> (monotonic time asked, reminded yet)
        self._intervention_clock: dict[int, tuple[float, bool]] = {}
        self.done = asyncio.Event()

    # ---- control from the core -------------------------------------------------------

    def request_stop(self, outcome: Outcome) -> None:
        if self._stop_outcome is None:
            self._stop_outcome = outcome
        self._inbox.put_nowait(_Stop(outcome))

    def poke(self) -> None:
        self._inbox.put_nowait(_Poke())

    def answered(self, intervention: InterventionView, actor: str) -> None:
        """Queued before the agent hears the answer, so state changes keep the agent's order."""
        self.requests.pop(intervention.id, None)
        self._inbox.put_nowait(_Answered(intervention, actor))

    @property
    def blocked(self) -> bool:
        return bool(self.requests)

    # ---- the run ---------------------------------------------------------------------

    async def run(self) -> None:
        outcome = Outcome("failed", "internal error", retryable=True)
        try:
            outcome = await self._run()
        except asyncio.CancelledError:
            outcome = Outcome("shutdown")
            raise
        except Exception as exc:  # never leave a task stuck in_progress because of a bug
            log.exception("task #%s: runner crashed", self.task_id)
            outcome = Outcome("failed", f"internal error: {exc}", retryable=True)
        finally:
            await asyncio.shield(self._conclude(outcome))

    async def _run(self) -> Outcome:
        core, store = self.core, self.core.store
        task = await store.get_task(self.task_id)
        try:
            harness = core.harness(task.agent)
            repo = core.settings.repos[task.repo]
        except KeyError as exc:
            return Outcome("failed", f"{exc.args[0]!s} is no longer configured; fix taskpin.toml and retry")
        log_error = core.logs.open_error(task.id)
        if log_error:
            return Outcome("failed", f"{log_error}; fix TASKPIN_LOG_DIR and retry")
        try:
            # Never another task's branch or folder (a reset database reuses ids): ours carry our mark.
            workdir, branch = await asyncio.to_thread(
                core.workspaces.create_for, repo.path, task.base_branch, task.id, task.branch, workspace_mark(task),
                adopt_unmarked=task.started_at is not None)
        except Exception as exc:
            return Outcome("failed", f"could not create the worktree: {exc}")
        follow_up = await store.take_pending_prompt(task.id)
        task = await store.update_task(task.id, worktree=str(workdir), branch=branch,
                                       started_at=task.started_at or utcnow())
        core.bus.publish(TaskUpdated(task))

        resume_id = await store.last_session_id(task.id) if follow_up and harness.supports_resume else None
        if resume_id:
            prompt = follow_up
        elif follow_up and follow_up != RESTART_PROMPT:
            prompt = compose_follow_up(task.prompt, follow_up)
        else:
            prompt = task.prompt

        attempts_left = core.settings.max_attempts
        while True:
            attempts_left -= 1
            outcome = await self._attempt(harness, task, workdir, prompt, resume_id)
            if outcome.kind != "failed" or not outcome.retryable or attempts_left <= 0 or self._stop_outcome:
                return self._stop_outcome or outcome
            delay = core.retry_delay(core.settings.max_attempts - attempts_left)
            await store.end_attempt(self.attempt_id, "failed", outcome.reason)
            self.attempt_id = None
            core.logs.append(task.id, f"[taskpin] attempt {self.attempt_number} failed: {outcome.reason}; "
                                      f"retrying in {delay:.1f}s")
            core.bus.publish(AttemptFailed(await store.get_task(task.id), self.attempt_number, outcome.reason, delay))
            if await self._sleep_unless_stopped(delay):
                return self._stop_outcome
            resume_id = None   # a crashed session starts over, in the same worktree

    async def _attempt(self, harness: Harness, task: TaskView, workdir, prompt: str, resume_id: str | None) -> Outcome:
        core, store = self.core, self.core.store
        self.attempt_id, self.attempt_number, token = await store.start_attempt(task.id, harness.kind)
        latest = await store.get_task(task.id)
        self.usage = UsageMeter(latest.input_tokens, latest.output_tokens, latest.cost_usd)
        spec = SessionSpec(task_id=task.id, workdir=workdir, prompt=prompt, attempt=self.attempt_number,
                           env={"TASKPIN_ATTEMPT_TOKEN": token}, resume_session_id=resume_id,
                           log_path=core.logs.path(task.id))
        core.logs.append(task.id, f"[taskpin] attempt {self.attempt_number} starting ({harness.kind}"
                                  f"{', resuming ' + resume_id if resume_id else ''})")
        try:
            self.session = await (harness.resume(spec) if resume_id else harness.start(spec))
        except Exception as exc:
            return Outcome("failed", f"could not start the agent: {exc}", retryable=True)
        await store.update_attempt(self.attempt_id, pid=self.session.pid)
        pump = asyncio.create_task(self._pump(self.session), name=f"pump:{task.id}")
        try:
            return await self._consume()
        finally:
            pump.cancel()
            self._publish_output()
            await self._stop_session()
            await self._flush_usage()

    async def _pump(self, session: AgentSession) -> None:
        try:
            async for event in session.events():
                while self._inbox.qsize() >= INBOX_LIMIT:   # backpressure: the agent's pipe fills up
                    self._room.clear()
                    await self._room.wait()
                self._inbox.put_nowait(event)
        except Exception as exc:
            self._inbox.put_nowait(Failed(f"lost the agent's event stream: {exc}"))
        self._inbox.put_nowait(_StreamEnded())

    async def _consume(self) -> Outcome:
        settings = self.core.settings
        running_budget = settings.session_timeout_s
        last_event = last_tick = time.monotonic()
        while True:
            if self._stop_outcome:
                return self._stop_outcome
            now = time.monotonic()
            if not self.blocked:
                running_budget -= now - last_tick
            last_tick = now
            deadline, why = self._next_deadline(now, last_event, running_budget)
            if self._inbox.empty():
                self._publish_output()   # everything read so far goes out before waiting
                try:
                    item = await asyncio.wait_for(self._inbox.get(), timeout=max(0.0, deadline - now))
                except asyncio.TimeoutError:
                    outcome = await self._on_deadline(why)
                    if outcome:
                        return outcome
                    continue
            elif now >= deadline:
                outcome = await self._on_deadline(why)
                if outcome:
                    return outcome
                continue
            else:
                item = self._inbox.get_nowait()
            if self._inbox.qsize() < INBOX_LIMIT // 2:
                self._room.set()
            if type(item) is OutputText:   # the common case: batched, one publish per batch
                last_event = time.monotonic()
                self._output.extend(item.text.splitlines() or [""])
                if len(self._output) >= OUTPUT_BATCH:
                    self._publish_output()
                continue
            self._publish_output()         # anything else keeps its place after the output before it
            if isinstance(item, _Answered):
                await self._on_answered(item)
                last_event = time.monotonic()   # the idle clock restarts when the agent is unblocked
                continue
            if isinstance(item, (_Poke, _Stop)):
                last_event = time.monotonic() if isinstance(item, _Poke) else last_event
                continue
            if isinstance(item, _StreamEnded):
                return Outcome("failed", "the agent ended without reporting a result", retryable=True)
            last_event = time.monotonic()
            outcome = await self._on_event(item)
            if outcome:
                return outcome

    def _next_deadline(self, now: float, last_event: float, running_budget: float) -> tuple[float, str]:
        settings = self.core.settings
        if not self.blocked:
            idle = last_event + settings.idle_timeout_s
            wall = now + running_budget
            return (idle, "idle") if idle <= wall else (wall, "wall")
        deadlines = []
        for iv_id, (created, reminded) in self._intervention_clock.items():
            if iv_id not in self.requests:
                continue
            if not reminded:
                deadlines.append((created + settings.intervention_reminder_s, f"remind:{iv_id}"))
            deadlines.append((created + settings.intervention_timeout_s, f"expire:{iv_id}"))
        return min(deadlines) if deadlines else (now + 3600, "none")

    async def _on_deadline(self, why: str) -> Outcome | None:
        settings = self.core.settings
        if why == "idle":
            return Outcome("failed", f"no activity from the agent for {settings.idle_timeout_s:g}s (idle timeout)",
                           retryable=True)
        if why == "wall":
            return Outcome("failed", f"the session ran longer than {settings.session_timeout_s:g}s (timeout)",
                           retryable=True)
        if why.startswith("remind:"):
            iv_id = int(why.split(":")[1])
            created, _ = self._intervention_clock[iv_id]
            self._intervention_clock[iv_id] = (created, True)
            await self.core._remind(iv_id)
            return None
        if why.startswith("expire:"):
            return Outcome("failed", f"nobody answered the agent within {settings.intervention_timeout_s:g}s "
                                     "(intervention timeout)", expired=True)
        return None

    async def _on_event(self, event) -> Outcome | None:
        core, store, task_id = self.core, self.core.store, self.task_id
        match event:
            case OutputText(text=text):
                self._output.extend(text.splitlines() or [""])
                self._publish_output()
            case ToolActivity(tool=tool, detail=detail):
                core.logs.append(task_id, f"[{tool}] {detail}")
                core.bus.publish(AgentOutput(task_id, f"{tool}: {detail}" if detail else tool, activity=True))
            case InterventionRequest():
                await self._on_intervention(event)
            case Usage(input_tokens=i, output_tokens=o, cost_usd=c):
                self.usage.add(i, o, c)
                core.usage_writer.add(task_id, self.attempt_id, i, o, c)
                over_budget = self._budget_outcome(*self.usage.totals)
                if over_budget:
                    await self._flush_usage()
                return over_budget
            case SessionIdAssigned(session_id=sid):
                await store.update_attempt(self.attempt_id, harness_session_id=sid)
            case Finished(summary=summary):
                return Outcome("finished", summary)
            case Failed(error=error, retryable=retryable):
                return Outcome("failed", error, retryable=retryable)
        return None

    def _budget_outcome(self, input_tokens: int, output_tokens: int, cost_usd: float) -> Outcome | None:
        settings = self.core.settings
        tokens = input_tokens + output_tokens
        if settings.max_tokens_per_task and tokens > settings.max_tokens_per_task:
            return Outcome("failed", f"budget exceeded: {tokens} tokens used, the cap is {settings.max_tokens_per_task}")
        if settings.max_cost_per_task_usd and cost_usd > settings.max_cost_per_task_usd:
            return Outcome("failed", f"budget exceeded: ${cost_usd:.2f} spent, the cap is "
                                     f"${settings.max_cost_per_task_usd:.2f}")
        return None

    def _publish_output(self) -> None:
        """The output lines read since the last call: one log write, one AgentOutput."""
        if self._output:
            text, self._output = "\n".join(self._output), []
            self.core.logs.append(self.task_id, text)
            self.core.bus.publish(AgentOutput(self.task_id, text))

    async def _flush_usage(self) -> None:
        """Usage recorded so far is in the store (this run's, and every other run's with it)."""
        await self.core.usage_writer.flush()

    async def _on_intervention(self, request: InterventionRequest) -> None:
        core, store = self.core, self.core.store
        iv = await store.add_intervention(
            task_id=self.task_id, attempt=self.attempt_number, request_id=request.request_id, kind=request.kind,
            prompt=request.prompt, options=request.options, tool=request.tool, detail=request.detail,
            multi_select=request.multi_select)
        self.requests[iv.id] = request
        self._intervention_clock[iv.id] = (time.monotonic(), False)
        core.logs.append(self.task_id, f"[taskpin] the agent asks ({request.kind}): {request.prompt}")
        task = await store.get_task(self.task_id)
        if task.state is S.IN_PROGRESS:
            task = await core._transition(task, S.BLOCKED, actor="agent", reason=f"needs a human: {request.kind}")
        core.bus.publish(InterventionRequested(task, iv))

    async def _on_answered(self, item: _Answered) -> None:
        core = self.core
        task = await core.store.get_task(self.task_id)
        if not self.requests and task.state is S.BLOCKED:
            try:
                task = await core._transition(task, S.IN_PROGRESS, actor=item.actor, reason="answered")
            except IllegalTransition:
                task = await core.store.get_task(self.task_id)
        core.bus.publish(InterventionResolved(task, item.intervention))

    async def _sleep_unless_stopped(self, delay: float) -> bool:
        """Wait out a retry backoff; True when a stop came in meanwhile."""
        deadline = time.monotonic() + delay
        while (left := deadline - time.monotonic()) > 0:
            try:
                item = await asyncio.wait_for(self._inbox.get(), timeout=left)
            except asyncio.TimeoutError:
                return False
            if isinstance(item, _Stop):
                return True
        return self._stop_outcome is not None

    async def _stop_session(self) -> None:
        session, self.session = self.session, None
        if session is not None:
            try:
                await session.stop()
            except Exception:
                log.exception("task #%s: stopping the agent failed", self.task_id)

    # ---- the end -----------------------------------------------------------------------

    async def _conclude(self, outcome: Outcome) -> None:
        core, store = self.core, self.core.store
        try:
            await self._stop_session()
            if outcome.kind == "shutdown":   # the task stays live; recovery resumes or fails it
                if self.attempt_id:
                    await store.end_attempt(self.attempt_id, "interrupted", "taskpin stopped")
                return
            await self._announce_unprocessed_answers()
            await self._close_interventions(InterventionStatus.EXPIRED if outcome.expired
                                            else InterventionStatus.CANCELLED)
            if self.attempt_id:
                await store.end_attempt(self.attempt_id, outcome.kind, outcome.reason or None)
            if outcome.kind == "finished":
                await self._to_review(outcome)
            else:
                await self._to_failed(outcome)
        except Exception:
            log.exception("task #%s: could not record the outcome %s", self.task_id, outcome)
        finally:
            core.logs.close(self.task_id)
            self.done.set()
            core._runner_done(self)

    async def _announce_unprocessed_answers(self) -> None:
        """Answers that arrived as the run ended still close their questions in the surface."""
        while not self._inbox.empty():
            item = self._inbox.get_nowait()
            if isinstance(item, _Answered):
                self.core.bus.publish(InterventionResolved(await self.core.store.get_task(self.task_id),
                                                           item.intervention))

    async def _close_interventions(self, status: InterventionStatus) -> None:
        for iv_id in list(self.requests):
            self.requests.pop(iv_id, None)
            resolved = await self.core.store.resolve_intervention(iv_id, status)
            if resolved:
                self.core.bus.publish(InterventionResolved(await self.core.store.get_task(self.task_id), resolved))

    async def _to_review(self, outcome: Outcome) -> None:
        core, store = self.core, self.core.store
        task = await store.get_task(self.task_id)
        repo = core.settings.repos[task.repo]
        try:
            await asyncio.to_thread(core.workspaces.commit_all, task.worktree or core.workspaces.path_for(task.id),
                                    f"{task.title}\n\ntaskpin task #{task.id}")
            diff = await asyncio.to_thread(core.workspaces.diff_summary, repo.path, task.base_branch, task.branch)
        except Exception as exc:
            await self._to_failed(Outcome("failed", f"could not commit the agent's work: {exc}"))
            return
        core.logs.append(task.id, f"[taskpin] finished: {outcome.reason}")
        for _ in range(3):   # an answer may move blocked -> in_progress under us: re-read and retry
            task = await store.get_task(self.task_id)
            try:
                if task.state is S.BLOCKED:
                    task = await core._transition(task, S.IN_PROGRESS, actor="taskpin", reason="agent finished")
                await core._transition(task, S.AWAITING_REVIEW, actor="agent", reason=outcome.reason or "finished",
                                       diff=diff.to_dict(), finished_at=utcnow(), failure_reason=None)
                return
            except IllegalTransition:
                continue

    async def _to_failed(self, outcome: Outcome) -> None:
        core = self.core
        reason = outcome.reason or outcome.kind
        core.logs.append(self.task_id, f"[taskpin] failed: {reason}")
        for _ in range(3):   # an answer may move blocked -> in_progress under us: re-read and retry
            task = await core.store.get_task(self.task_id)
            if task.state not in (S.IN_PROGRESS, S.BLOCKED):
                return
            try:
                await core._transition(task, S.FAILED, actor=outcome.actor, reason=reason, failure_reason=reason,
                                       finished_at=utcnow(), retryable=True)
                return
            except IllegalTransition:
                continue
        log.warning("task #%s kept moving; it could not be failed", self.task_id)
