"""One task's run: worktree, agent session, attempts with retries, timeouts, budget, result.

A TaskRunner lives from the moment a task leaves the queue (queued -> in_progress) until it
reaches awaiting_review or failed (or taskpin shuts down). It talks to the world only through
the World it is given (transition, publish, store, logs, workspaces, harnesses, clock) and is
the only writer of its task's state while it runs. It owns its session's conversation:
answers and follow-ups go through `answer()` and `follow_up()`; the state changes they cause
happen here, in order with what the agent does next.
"""
from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from dataclasses import replace
from pathlib import Path

from .errors import ActionRefused
from .events import (
    AgentOutput,
    AnswerNotDelivered,
    AttemptFailed,
    InterventionReminder,
    InterventionRequested,
    InterventionResolved,
    TaskStateChanged,
    TaskUpdated,
)
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
from .models import Answer, InterventionStatus, InterventionView, TaskView
from .run_end import RunEnding
from .run_parts import (
    INBOX_LIMIT,
    OUTPUT_BATCH,
    RESTART_PROMPT,
    Answered,
    OpenQuestion,
    Outcome,
    Poke,
    Stop,
    StreamEnded,
    UsageMeter,
    budget_outcome,
    compose_follow_up,
    keep_only_controls,
    workspace_mark,
)
from .states import TaskState
from .store.fence import LeaseLost
from .store.tables import utcnow
from .worktree_setup import prepare_for_runner
from .world import World

log = logging.getLogger(__name__)
S = TaskState
__all__ = ["RESTART_PROMPT", "Outcome", "TaskRunner"]


class TaskRunner(RunEnding):
    def __init__(self, world: World, task: TaskView, *, on_done: Callable[["TaskRunner"], None] | None = None):
        self.world = world
        self.clock = world.clock
        self.task_id = task.id
        self.task = task          # as it left the queue: its id, owner, agent and repo stay
        self.session: AgentSession | None = None
        self.attempt_id: int | None = None
        self.attempt_number = 0
        self._questions: dict[int, OpenQuestion] = {}   # open question's intervention id -> it
        self._inbox: asyncio.Queue[object] = asyncio.Queue()   # agent events (bounded by the pump) and controls
        self._room = asyncio.Event()
        self._stop_outcome: Outcome | None = None
        self._stopped = asyncio.Event()
        self.usage = UsageMeter(0, 0, 0.0)
        self._output: list[str] = []   # output lines read, not yet logged and published
        self._on_done = on_done
        self.done = asyncio.Event()
        self.env: dict[str, str] = {}   # for the agent: the task's ports (worktree_setup.py)

    # ---- control from the engine ----------------------------------------------------------
    def request_stop(self, outcome: Outcome) -> None:
        if self._stop_outcome is None:
            self._stop_outcome = outcome
        self._stopped.set()
        self._inbox.put_nowait(Stop(outcome))

    def poke(self) -> None:
        self._inbox.put_nowait(Poke())

    @property
    def blocked(self) -> bool:
        return bool(self._questions)

    def question(self, intervention_id: int) -> InterventionView | None:
        """The open question with this id, as it is shown, if this run's agent asked it."""
        open_question = self._questions.get(intervention_id)
        return open_question.view if open_question else None

    def open_questions(self) -> list[InterventionView]:
        """This run's open questions, oldest first, as the store lists them."""
        return [self._questions[iv_id].view for iv_id in sorted(self._questions)]

    @property
    def accepts_follow_up(self) -> bool:
        return bool(self.session and self.session.supports_follow_up)

    async def answer(self, question: InterventionView, answer: Answer, actor: str) -> InterventionView:
        """Hand a (validated) answer to the agent first; only once it has it is the question
        stored and shown as answered. If the agent cannot be given it, the question stays open,
        the task's thread hears why (AnswerNotDelivered) and the caller gets ActionRefused."""
        open_question = self._questions.get(question.id)
        if open_question is None or open_question.answering:
            raise ActionRefused("this question was answered a moment ago")
        session = self.session
        if session is None:
            raise ActionRefused("the agent that asked is no longer running")
        open_question.answering = True
        handed: asyncio.Future[InterventionView | None] = asyncio.get_running_loop().create_future()
        self._inbox.put_nowait(Answered(question.id, actor, handed))   # before the agent can react
        try:
            await session.answer(open_question.request.request_id, answer, open_question.request)
        except BaseException as exc:
            open_question.answering = False
            handed.set_result(None)
            if not isinstance(exc, Exception):
                raise   # cancelled: the question stays open, the cancellation goes on
            error = str(exc) or type(exc).__name__
            await self._not_delivered(open_question, actor, error)
            raise ActionRefused(f"your answer could not reach the agent ({error}); "
                                "the question is still open, answer it again") from exc
        self.world.logs.append(self.task_id, f"[taskpin] {actor} answered: "
                                             f"{answer.text or ', '.join(answer.option_ids)}")
        self._questions.pop(question.id, None)
        answered = replace(open_question.view, status=InterventionStatus.ANSWERED, answered_by=actor,
                           answer_text=answer.text or None, answer_options=answer.option_ids, resolved_at=utcnow())
        try:
            stored = await self.world.store.resolve_intervention(
                question.id, InterventionStatus.ANSWERED, answered_by=actor, answer_text=answer.text or None,
                answer_options=answer.option_ids)
            # None: the run closed the question as the agent took the answer; show what the store says
            answered = stored or await self.world.store.get_intervention(question.id) or answered
        finally:
            handed.set_result(answered)
        return answered

    async def _not_delivered(self, question: OpenQuestion, actor: str, error: str) -> None:
        self.world.logs.append(self.task_id, f"[taskpin] the answer by {actor} could not reach the agent: {error}")
        task = await self.world.store.get_task(self.task_id)
        self.world.publish(AnswerNotDelivered(task, question.view, actor, error))

    async def follow_up(self, text: str, actor: str) -> bool:
        """Send a message to the agent; False when its session cannot take one now."""
        session = self.session
        if session is None or not session.supports_follow_up:
            return False
        await session.send(text)
        self.world.logs.append(self.task_id, f"[taskpin] {actor} says: {text}")
        self.poke()
        return True

    # ---- the run ---------------------------------------------------------------------

    async def run(self) -> None:
        outcome = Outcome("failed", "internal error", retryable=True)
        try:
            outcome = await self._run()
        except asyncio.CancelledError:
            outcome = Outcome("shutdown")
            raise
        except LeaseLost as exc:   # another worker took the task over: stop, and write nothing
            log.warning("task #%s: %s; stopping its agent", self.task_id, exc)
            outcome = Outcome("lost", str(exc))
        except Exception as exc:  # never leave a task stuck in_progress because of a bug
            log.exception("task #%s: runner crashed", self.task_id)
            outcome = Outcome("failed", f"internal error: {exc}", retryable=True)
        finally:
            await asyncio.shield(self._conclude(outcome))

    async def _run(self) -> Outcome:
        world, store = self.world, self.world.store
        task = self.task = await store.get_task(self.task_id)
        if self._stop_outcome:   # cancelled between leaving the queue and starting
            return self._stop_outcome
        try:
            harness = world.harness(task.agent)
            repo = world.settings.repos[task.repo]
        except KeyError as exc:
            return Outcome("failed", f"{exc.args[0]!s} is no longer configured; fix taskpin.toml and retry")
        log_error = world.logs.open_error(task.id)
        if log_error:
            return Outcome("failed", f"{log_error}; fix TASKPIN_LOG_DIR and retry")
        try:
            # Never another task's branch or folder (a reset database reuses ids): ours carry our mark.
            workdir, branch = await asyncio.to_thread(
                world.workspaces.create_for, repo.path, task.base_branch, task.id, task.branch, workspace_mark(task),
                adopt_unmarked=task.started_at is not None)
        except Exception as exc:
            return Outcome("failed", f"could not create the worktree: {exc}")
        follow_up = await store.take_pending_prompt(task.id)
        task = await store.update_task(task.id, worktree=str(workdir), branch=branch,
                                       started_at=task.started_at or utcnow())
        world.publish(TaskUpdated(task))
        prepared = await prepare_for_runner(world, task, repo, workdir, lambda: self._stop_outcome is not None)
        if self._stop_outcome or prepared.failure:
            return self._stop_outcome or Outcome("failed", prepared.failure or "the worktree could not be prepared")
        self.env = prepared.env

        resume_id = await store.last_session_id(task.id) if follow_up and harness.supports_resume else None
        if resume_id and follow_up:
            prompt = follow_up
        elif follow_up and follow_up != RESTART_PROMPT:
            prompt = compose_follow_up(task.prompt, follow_up)
        else:
            prompt = task.prompt

        attempts_left = world.settings.max_attempts
        while True:
            attempts_left -= 1
            outcome = await self._attempt(harness, task, workdir, prompt, resume_id)
            if outcome.kind != "failed" or not outcome.retryable or attempts_left <= 0 or self._stop_outcome:
                return self._stop_outcome or outcome
            delay = world.retry_delay(world.settings.max_attempts - attempts_left)
            if self.attempt_id is not None:
                await store.end_attempt(self.attempt_id, "failed", outcome.reason)
            self.attempt_id = None
            world.logs.append(task.id, f"[taskpin] attempt {self.attempt_number} failed: {outcome.reason}; "
                                       f"retrying in {delay:.1f}s")
            world.publish(AttemptFailed(await store.get_task(task.id), self.attempt_number, outcome.reason, delay))
            await self._close_interventions(InterventionStatus.CANCELLED)   # their session is gone
            keep_only_controls(self._inbox)
            self._room.set()
            if await self._sleep_unless_stopped(delay):
                return self._stop_outcome or Outcome("shutdown")
            resume_id = None   # a crashed session starts over, in the same worktree

    async def _attempt(self, harness: Harness, task: TaskView, workdir: Path, prompt: str,
                       resume_id: str | None) -> Outcome:
        world, store = self.world, self.world.store
        self.attempt_id, self.attempt_number, token = await store.start_attempt(task.id, harness.kind)
        latest = await store.get_task(task.id)
        self.usage = UsageMeter(latest.input_tokens, latest.output_tokens, latest.cost_usd)
        spec = SessionSpec(task_id=task.id, workdir=workdir, prompt=prompt, attempt=self.attempt_number,
                           env={**self.env, "TASKPIN_ATTEMPT_TOKEN": token}, resume_session_id=resume_id,
                           log_path=world.logs.path(task.id))
        world.logs.append(task.id, f"[taskpin] attempt {self.attempt_number} starting ({harness.kind}"
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
        self._inbox.put_nowait(StreamEnded())

    async def _consume(self) -> Outcome:
        settings, clock = self.world.settings, self.clock
        running_budget = settings.session_timeout_s
        last_event = last_tick = clock.monotonic()
        while True:
            if self._stop_outcome:
                return self._stop_outcome
            now = clock.monotonic()
            if not self.blocked:
                running_budget -= now - last_tick
            last_tick = now
            deadline, why = self._next_deadline(now, last_event, running_budget)
            if self._inbox.empty():
                self._publish_output()   # everything read so far goes out before waiting
                try:
                    item = await clock.wait_for(self._inbox.get(), max(0.0, deadline - now))
                except TimeoutError:
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
                last_event = clock.monotonic()
                self._output.extend(item.text.splitlines() or [""])
                if len(self._output) >= OUTPUT_BATCH:
                    self._publish_output()
                continue
            self._publish_output()         # anything else keeps its place after the output before it
            if isinstance(item, Answered):
                if await self._on_answered(item):
                    last_event = clock.monotonic()   # the idle clock restarts when the agent is unblocked
                continue
            if isinstance(item, (Poke, Stop)):
                last_event = clock.monotonic() if isinstance(item, Poke) else last_event
                continue
            if isinstance(item, StreamEnded):
                return Outcome("failed", "the agent ended without reporting a result", retryable=True)
            last_event = clock.monotonic()
            outcome = await self._on_event(item)
            if outcome:
                return outcome

    def _next_deadline(self, now: float, last_event: float, running_budget: float) -> tuple[float, str]:
        settings = self.world.settings
        if not self.blocked:
            idle = last_event + settings.idle_timeout_s
            wall = now + running_budget
            return (idle, "idle") if idle <= wall else (wall, "wall")
        deadlines = [(now + 3600, "none")]   # only answers in flight: they end the wait
        for iv_id, question in self._questions.items():
            if question.answering:
                continue
            if not question.reminded:
                deadlines.append((question.asked_at + settings.intervention_reminder_s, f"remind:{iv_id}"))
            deadlines.append((question.asked_at + settings.intervention_timeout_s, f"expire:{iv_id}"))
        return min(deadlines)

    async def _on_deadline(self, why: str) -> Outcome | None:
        settings = self.world.settings
        if why == "idle":
            return Outcome("failed", f"no activity from the agent for {settings.idle_timeout_s:g}s (idle timeout)",
                           retryable=True)
        if why == "wall":
            return Outcome("failed", f"the session ran longer than {settings.session_timeout_s:g}s (timeout)",
                           retryable=True)
        if why.startswith("remind:"):
            await self._remind(int(why.split(":")[1]))
            return None
        if why.startswith("expire:"):
            question = self._questions.get(int(why.split(":")[1]))
            if question is None or question.answering:
                return None
            return Outcome("failed", f"nobody answered the agent within {settings.intervention_timeout_s:g}s "
                                     "(intervention timeout)", expired=True)
        return None

    async def _remind(self, intervention_id: int) -> None:
        question = self._questions.get(intervention_id)
        if question is None:
            return
        question.reminded = True
        await self.world.store.mark_reminded(intervention_id)
        question.view = replace(question.view, reminded_at=utcnow())
        self.world.publish(InterventionReminder(await self.world.store.get_task(self.task_id), question.view))

    async def _on_event(self, event: object) -> Outcome | None:
        world, store, task_id = self.world, self.world.store, self.task_id
        match event:
            case OutputText(text=text):
                self._output.extend(text.splitlines() or [""])
                self._publish_output()
            case ToolActivity(tool=tool, detail=detail):
                world.logs.append(task_id, f"[{tool}] {detail}")
                world.bus.publish(AgentOutput(task_id, f"{tool}: {detail}" if detail else tool, activity=True))
            case InterventionRequest():
                await self._on_intervention(event)
            case Usage(input_tokens=i, output_tokens=o, cost_usd=c):
                self.usage.add(i, o, c)
                world.usage_writer.add(task_id, self.attempt_id, i, o, c)
                over_budget = budget_outcome(self.world.settings, *self.usage.totals)
                if over_budget:
                    await self._flush_usage()
                return over_budget
            case SessionIdAssigned(session_id=sid) if self.attempt_id is not None:
                await store.update_attempt(self.attempt_id, harness_session_id=sid)
            case Finished(summary=summary):
                return Outcome("finished", summary)
            case Failed(error=error, retryable=retryable):
                return Outcome("failed", error, retryable=retryable)
        return None

    def _publish_output(self) -> None:
        """The output lines read since the last call: one log write, one AgentOutput."""
        if self._output:
            text, self._output = "\n".join(self._output), []
            self.world.logs.append(self.task_id, text)
            self.world.publish(AgentOutput(self.task_id, text))

    async def _flush_usage(self) -> None:
        """Usage recorded so far is in the store (this run's, and every other run's with it)."""
        await self.world.usage_writer.flush()

    async def _on_intervention(self, request: InterventionRequest) -> None:
        world, store = self.world, self.world.store
        session = self.session
        if session and await world.policies.settle(self.task_id, request, session, attempt=self.attempt_number):
            return   # allowed or denied by an approval-policy rule: no human needed
        reason = f"needs a human: {request.kind}"
        iv, blocked, task = await store.ask(
            task_id=self.task_id, actor="agent", reason=reason, attempt=self.attempt_number,
            request_id=request.request_id, kind=request.kind, prompt=request.prompt, options=request.options,
            tool=request.tool, detail=request.detail, multi_select=request.multi_select)
        self._questions[iv.id] = OpenQuestion(request, iv, self.clock.monotonic())
        world.logs.append(self.task_id, f"[taskpin] the agent asks ({request.kind}): {request.prompt}")
        if blocked:
            world.publish(TaskStateChanged(task, S.IN_PROGRESS, S.BLOCKED, "agent", reason))
        world.publish(InterventionRequested(task, iv))

    async def _on_answered(self, item: Answered) -> bool:
        """The answer reached the agent (or not): back to in_progress once no question is open.
        True when the agent has the answer."""
        resolved = await item.handed
        if resolved is None:
            return False
        world = self.world
        task = await world.store.get_task(self.task_id)
        if not self._questions and task.state is S.BLOCKED:
            task = await world.transition(task, S.IN_PROGRESS, actor=item.actor, reason="answered")
        world.publish(InterventionResolved(task, resolved))
        return True

    async def _sleep_unless_stopped(self, delay: float) -> bool:
        """Wait out a retry backoff; True when a stop came in meanwhile."""
        backoff = asyncio.ensure_future(self.clock.sleep(delay))
        stop = asyncio.ensure_future(self._stopped.wait())
        try:
            await asyncio.wait({backoff, stop}, return_when=asyncio.FIRST_COMPLETED)
        finally:
            backoff.cancel()
            stop.cancel()
        return self._stop_outcome is not None

    async def _stop_session(self) -> None:
        session, self.session = self.session, None
        if session is not None:
            try:
                await session.stop()
            except Exception:
                log.exception("task #%s: stopping the agent failed", self.task_id)
