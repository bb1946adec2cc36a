"""Task threads: the top-level message posted at dispatch, and everything said under it.

Interventions are posted the moment the core reports them (not on the board's tick);
milestones, the review summary and the result follow; agent output is summarised at most
once per interval. Every message is written to the outbox first, in event order; the channel
poster sends it at Slack's pace and keeps it until Slack took it.
"""
from __future__ import annotations

import asyncio
import logging
import time
from collections import defaultdict, deque
from collections.abc import Callable
from datetime import UTC, datetime

from slack_sdk.web.async_client import AsyncWebClient

from orchestrator import (
    AgentOutput,
    AnswerNotDelivered,
    AttemptFailed,
    InterventionReminder,
    InterventionRequested,
    InterventionResolved,
    Orchestrator,
    Subscription,
    TaskNotice,
    TaskState,
    TaskStateChanged,
    TaskView,
)

from .blocks.intervention import render_intervention, render_intervention_reminder, render_intervention_resolved
from .blocks.thread import (
    dispatch_message,
    milestone_message,
    notice_message,
    output_summary_message,
    result_message,
    review_message,
)
from .poster import ChannelPoster, Priority
from .slack_errors import describe

log = logging.getLogger(__name__)
S = TaskState

THREAD_KEY = "slack.thread:"        # + task id -> {"channel", "ts", "url"}
THREAD_TS_KEY = "slack.thread_ts:"  # + ts -> task id
INTERVENTION_KEY = "slack.iv:"      # + intervention id -> {"channel", "ts"}
OUTPUT_LINES_KEPT = 40


async def thread_urls(core: Orchestrator) -> dict[int, str]:
    items = await core.kv_items(THREAD_KEY)
    return {int(k[len(THREAD_KEY):]): v["url"] for k, v in items.items() if isinstance(v, dict) and v.get("url")}


async def thread_url(core: Orchestrator, task_id: int) -> str | None:
    """The task's thread in Slack, for links from elsewhere (a pull request's description)."""
    stored = await core.kv_get(THREAD_KEY + str(task_id))
    return stored.get("url") if isinstance(stored, dict) else None


async def task_for_thread(core: Orchestrator, thread_ts: str) -> int | None:
    value = await core.kv_get(THREAD_TS_KEY + thread_ts)
    return int(value) if value is not None else None


class ThreadIndex:
    """Which task a thread belongs to. A thread never changes task, so a lookup that found one
    is kept: a reply costs no store read (the mapping may be written by another process)."""

    def __init__(self, core: Orchestrator, limit: int = 10_000):
        self.core = core
        self.limit = limit
        self._tasks: dict[str, int] = {}

    def learn(self, thread_ts: str, task_id: int) -> None:
        if len(self._tasks) >= self.limit:
            self._tasks.pop(next(iter(self._tasks)))
        self._tasks[thread_ts] = task_id

    async def task_of(self, thread_ts: str) -> int | None:
        if (task_id := self._tasks.get(thread_ts)) is not None:
            return task_id
        task_id = await task_for_thread(self.core, thread_ts)
        if task_id is not None:
            self.learn(thread_ts, task_id)
        return task_id


def root_key(channel: str, task_id: int) -> str:
    return f"root:{channel}:{task_id}"


def thread_marker(task_id: int) -> dict:
    """Metadata on a task's thread root: after a crash, conversations.history finds it by this."""
    return {"event_type": "taskpin_thread", "event_payload": {"task_id": task_id}}


def intervention_marker(task_id: int, intervention_id: int) -> dict:
    return {"event_type": "taskpin_intervention",
            "event_payload": {"task_id": task_id, "intervention_id": intervention_id}}


class TaskThreads:
    """Writes every thread message into the outbox, in the order of the core's events; the
    poster sends them. Nothing here waits for Slack."""

    def __init__(self, core: Orchestrator, client: AsyncWebClient, poster: ChannelPoster, channel: str, *,
                 output_interval_s: float = 10.0, workspace_url: str | None = None,
                 team_url: Callable[[], str | None] | None = None):
        self.core = core
        self.client = client
        self.poster = poster
        self.channel = channel
        self.output_interval_s = output_interval_s
        self.workspace_url = workspace_url.rstrip("/") if workspace_url else None
        self.team_url = team_url or (lambda: None)
        self.on_thread_started: list[Callable[[int], None]] = []   # e.g. the board: a link to show
        self._output: dict[int, deque[str]] = defaultdict(lambda: deque(maxlen=OUTPUT_LINES_KEPT))
        self._output_due: dict[int, float] = {}
        # Read once, then kept: where each task's thread is in Slack, and the task as the latest
        # event showed it, so an output summary costs no store read.
        self._thread_ts: dict[int, str] = {}
        self._tasks: dict[int, TaskView] = {}
        self.index = ThreadIndex(core)
        self._output_flusher: asyncio.Task | None = None
        self._background: set[asyncio.Task] = set()
        self._writing = asyncio.Lock()    # one writer at a time: the outbox order is the event order
        self._sub: Subscription | None = None
        poster.on_sent("thread_root", self._root_posted)

    async def start(self) -> None:
        self._sub = self.core.bus.subscribe(self._on_event, name="threads")
        self._output_flusher = asyncio.create_task(self._flush_output_forever(), name="thread-output")

    async def close(self) -> None:
        if self._sub:
            await self.core.bus.unsubscribe(self._sub)
        if self._output_flusher:
            self._output_flusher.cancel()
        for task in list(self._background):
            task.cancel()

    def _spawn(self, coro) -> None:
        task = asyncio.create_task(coro)
        self._background.add(task)
        task.add_done_callback(self._background.discard)
        task.add_done_callback(_log_failure)

    # ---- events ----------------------------------------------------------------------------

    async def _on_event(self, event) -> None:
        task = getattr(event, "task", None)
        if task is not None:
            self._tasks[task.id] = task
        match event:
            case AgentOutput(task_id=task_id, text=text):
                lines = self._output[task_id]
                lines.extend(text.splitlines() or [""])
                self._output_due.setdefault(task_id, time.monotonic() + self.output_interval_s)
            case InterventionRequested(task=task, intervention=iv):
                await self._post_intervention(task, iv)
            case InterventionResolved(task=task, intervention=iv):
                await self._close_intervention(task, iv)
            case InterventionReminder(task=task, intervention=iv):
                await self._reply(task, render_intervention_reminder(task, iv, owner=task.owner,
                                                                     now=datetime.now(UTC)),
                                  "reminder", Priority.INTERVENTION)
            case AnswerNotDelivered(task=task, actor=actor, error=error):
                await self._reply(task, milestone_message(
                    task, f"the answer could not reach the agent ({error}); the question is still open, "
                          "answer it again", by=actor), "milestone", Priority.INTERVENTION)
            case AttemptFailed(task=task, attempt=n, error=error, retry_in=retry_in):
                retry = f"; retrying in {retry_in:.0f}s" if retry_in is not None else ""
                await self._reply(task, milestone_message(task, f"attempt {n} failed: {error}{retry}"),
                                  "milestone", Priority.MILESTONE)
            case TaskNotice(task=task, text=text, link=url, link_text=url_text, warning=warning):
                await self._reply(task, notice_message(task, text, url=url, url_text=url_text, warning=warning),
                                  "milestone", Priority.MILESTONE)
            case TaskStateChanged():
                await self._on_state_changed(event)

    async def _on_state_changed(self, event: TaskStateChanged) -> None:
        task, before, after = event.task, event.from_state, event.to_state
        if before is S.BACKLOG and after in (S.QUEUED, S.WAITING):
            async with self._writing:
                await self._thread(task, actor=event.actor)
        elif before is S.APPROVING and after is S.AWAITING_REVIEW:   # the merge or push failed
            await self._reply(task, milestone_message(task, f"approval failed: {event.reason}", by=event.actor),
                              "milestone", Priority.MILESTONE)
        elif after is S.AWAITING_REVIEW:
            await self._flush_then(task, review_message(task), "review")
        elif after in (S.COMPLETED, S.FAILED) and before is not S.BACKLOG:
            await self._flush_then(task, result_message(task), "result")
        elif before is S.AWAITING_REVIEW and after is S.QUEUED:
            await self._reply(task, milestone_message(task, "changes requested", by=event.actor),
                              "milestone", Priority.MILESTONE)

    # ---- writing into the outbox ------------------------------------------------------------

    async def _thread(self, task: TaskView, actor: str | None = None) -> tuple[dict, str | None]:
        """Where a reply goes: ({"thread_ts": ts}, None) for a thread in Slack already, else
        ({}, the root's outbox key), recording the root's intent first if there is none yet."""
        if task.id in self._thread_ts:
            return {"thread_ts": self._thread_ts[task.id]}, None
        stored = await self.core.kv_get(THREAD_KEY + str(task.id))
        if stored and stored.get("channel") == self.channel:
            self._thread_ts[task.id] = stored["ts"]
            return {"thread_ts": stored["ts"]}, None
        key = root_key(self.channel, task.id)
        root = await self.core.outbox.get(key)
        if root is not None and root.ref:
            return {"thread_ts": root.ref}, None
        if root is None:
            task = await self.core.get_task(task.id)   # by now it has usually left the queue
            payload = {**dispatch_message(task, actor or task.owner), "metadata": thread_marker(task.id)}
            await self.poster.post(self.channel, _thread_of(task.id), payload, kind="thread_root",
                                   priority=Priority.THREAD_START, key=key)
        return {}, key

    async def note(self, task: TaskView, payload: dict, kind: str) -> None:
        """A message from elsewhere in the bot (the approval policy's digest) into the thread."""
        await self._reply(task, payload, kind, Priority.MILESTONE)

    async def _reply(self, task: TaskView, payload: dict, kind: str, priority: Priority, *,
                     key: str | None = None, coalesce: bool = False, locked: bool = False):
        if not locked:
            async with self._writing:
                return await self._reply(task, payload, kind, priority, key=key, coalesce=coalesce, locked=True)
        where, parent = await self._thread(task)
        return await self.poster.post(self.channel, _thread_of(task.id), {**payload, **where}, kind=kind,
                                      priority=priority, key=key, parent=parent, coalesce=coalesce)

    async def _flush_then(self, task: TaskView, payload: dict, kind: str) -> None:
        async with self._writing:
            await self._flush_output(task.id, locked=True)
            await self._reply(task, payload, kind, Priority.MILESTONE, locked=True)

    async def _post_intervention(self, task: TaskView, iv) -> None:
        payload = {**render_intervention(task, iv, owner=task.owner), "metadata": intervention_marker(task.id, iv.id)}
        await self._reply(task, payload, "intervention", Priority.INTERVENTION, key=intervention_key(iv.id))

    async def _close_intervention(self, task: TaskView, iv) -> None:
        """Edit the question to say who answered what, with its buttons removed; after the
        question itself, however late that went out."""
        key = intervention_key(iv.id)
        async with self._writing:
            question = await self.core.outbox.get(key)
            if question is not None and question.done and not question.ref:
                return                     # it never reached Slack: nothing to edit
            where: dict[str, str] = {}
            parent: str | None = key
            if question is None or question.ref:
                ts = question.ref if question is not None else (
                    (await self.core.kv_get(INTERVENTION_KEY + str(iv.id))) or {}).get("ts")
                if not ts:
                    return
                where, parent = {"ts": ts}, None
            await self.poster.update(self.channel, _thread_of(task.id),
                                     {**render_intervention_resolved(task, iv), **where}, kind="intervention_closed",
                                     priority=Priority.INTERVENTION, key=f"{key}:closed", parent=parent)

    async def _root_posted(self, item, ts: str) -> None:
        task_id = int(item.payload["metadata"]["event_payload"]["task_id"])
        url = await self._permalink(item.channel, ts)
        await self.core.kv_set(THREAD_KEY + str(task_id), {"channel": item.channel, "ts": ts, "url": url})
        await self.core.kv_set(THREAD_TS_KEY + ts, task_id)
        self.index.learn(ts, task_id)
        if item.channel == self.channel:
            self._thread_ts[task_id] = ts
        for notify in self.on_thread_started:
            notify(task_id)

    async def _permalink(self, channel: str, ts: str) -> str | None:
        base = self.workspace_url or (self.team_url() or "").rstrip("/")
        if base:
            return f"{base}/archives/{channel}/p{ts.replace('.', '')}"
        try:
            return (await self.client.chat_getPermalink(channel=channel, message_ts=ts)).get("permalink")
        except Exception as exc:   # a card without a link is fine; the thread is there
            log.info("no permalink for the thread %s: %s", ts, describe(exc))
            return None

    # ---- output summaries ----------------------------------------------------------------------

    async def _flush_output_forever(self) -> None:
        while True:
            await asyncio.sleep(min(1.0, self.output_interval_s))
            now = time.monotonic()
            for task_id, due in list(self._output_due.items()):
                if due <= now:
                    self._spawn(self._flush_output(task_id))

    async def _flush_output(self, task_id: int, *, locked: bool = False) -> None:
        if not locked:
            async with self._writing:
                return await self._flush_output(task_id, locked=True)
        self._output_due.pop(task_id, None)
        lines = list(self._output.pop(task_id, ()))
        if not lines:
            return
        task = self._tasks.get(task_id) or await self.core.get_task(task_id)
        await self._reply(task, output_summary_message(task, lines), "output", Priority.OUTPUT,
                          coalesce=True, locked=True)


def intervention_key(intervention_id: int) -> str:
    return f"iv:{intervention_id}"


def _thread_of(task_id: int) -> str:
    return f"task:{task_id}"


def _log_failure(task: asyncio.Task) -> None:
    if not task.cancelled() and task.exception() is not None:
        log.warning("a thread message could not be sent: %s", task.exception())
