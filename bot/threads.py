"""Task threads: the top-level message posted at dispatch, and everything said under it.

Interventions are posted the moment the core reports them (not on the board's tick);
milestones, the review summary and the result follow; agent output is summarised at most
once per interval. Every post goes through the channel poster, which keeps Slack's pace.
"""
from __future__ import annotations

import asyncio
import logging
import time
from datetime import datetime, timezone
from collections import defaultdict, deque

from slack_sdk.errors import SlackApiError
from slack_sdk.web.async_client import AsyncWebClient

from orchestrator import (
    AgentOutput,
    AttemptFailed,
    InterventionReminder,
    InterventionRequested,
    InterventionResolved,
    Orchestrator,
    TaskState,
    TaskStateChanged,
    TaskView,
)

from .blocks.intervention import render_intervention, render_intervention_reminder, render_intervention_resolved
from .blocks.thread import dispatch_message, milestone_message, output_summary_message, result_message, review_message
from .budget import MethodBudget
from .poster import ChannelPoster, Priority

log = logging.getLogger(__name__)
S = TaskState

THREAD_KEY = "slack.thread:"        # + task id -> {"channel", "ts", "url"}
THREAD_TS_KEY = "slack.thread_ts:"  # + ts -> task id
INTERVENTION_KEY = "slack.iv:"      # + intervention id -> {"channel", "ts"}
OUTPUT_LINES_KEPT = 40


async def thread_urls(core: Orchestrator) -> dict[int, str]:
    items = await core.store.kv_items(THREAD_KEY)
    return {int(k[len(THREAD_KEY):]): v["url"] for k, v in items.items() if isinstance(v, dict) and v.get("url")}


async def task_for_thread(core: Orchestrator, thread_ts: str) -> int | None:
    value = await core.kv_get(THREAD_TS_KEY + thread_ts)
    return int(value) if value is not None else None


class TaskThreads:
    def __init__(self, core: Orchestrator, client: AsyncWebClient, poster: ChannelPoster, channel: str, *,
                 output_interval_s: float = 10.0, workspace_url: str | None = None,
                 update_budget: MethodBudget | None = None):
        self.core = core
        self.client = client
        self.poster = poster
        self.channel = channel
        self.output_interval_s = output_interval_s
        self.update_budget = update_budget or MethodBudget()   # chat.update, shared with the board
        self.workspace_url = workspace_url.rstrip("/") if workspace_url else None
        self._threads: dict[int, asyncio.Future] = {}
        self._intervention_posts: dict[int, asyncio.Future] = {}
        self._output: dict[int, deque[str]] = defaultdict(lambda: deque(maxlen=OUTPUT_LINES_KEPT))
        self._output_due: dict[int, float] = {}
        self._output_flusher: asyncio.Task | None = None
        self._background: set[asyncio.Task] = set()
        self._sub = None

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
        match event:
            case AgentOutput(task_id=task_id, text=text):
                lines = self._output[task_id]
                lines.extend(text.splitlines() or [""])
                self._output_due.setdefault(task_id, time.monotonic() + self.output_interval_s)
            case InterventionRequested(task=task, intervention=iv):
                self._spawn(self._post_intervention(task, iv))
            case InterventionResolved(task=task, intervention=iv):
                self._spawn(self._close_intervention(task, iv))
            case InterventionReminder(task=task, intervention=iv):
                self._spawn(self._reply(task, render_intervention_reminder(task, iv, owner=task.owner, now=datetime.now(timezone.utc)),
                                        Priority.INTERVENTION))
            case AttemptFailed(task=task, attempt=n, error=error, retry_in=retry_in):
                retry = f"; retrying in {retry_in:.0f}s" if retry_in is not None else ""
                self._spawn(self._reply(task, milestone_message(task, f"attempt {n} failed: {error}{retry}"),
                                        Priority.MILESTONE))
            case TaskStateChanged():
                self._on_state_changed(event)

    def _on_state_changed(self, event: TaskStateChanged) -> None:
        task, before, after = event.task, event.from_state, event.to_state
        if before is S.BACKLOG and after is S.IN_PROGRESS:
            self._spawn(self.thread_ts(task, actor=event.actor))
        elif before is S.APPROVING and after is S.AWAITING_REVIEW:   # the merge or push failed
            self._spawn(self._reply(task, milestone_message(task, f"approval failed: {event.reason}", by=event.actor),
                                    Priority.MILESTONE))
        elif after is S.AWAITING_REVIEW:
            self._spawn(self._flush_then(task, review_message(task)))
        elif after in (S.COMPLETED, S.FAILED) and before is not S.BACKLOG:
            self._spawn(self._flush_then(task, result_message(task)))
        elif before is S.AWAITING_REVIEW and after is S.IN_PROGRESS:
            self._spawn(self._reply(task, milestone_message(task, "changes requested", by=event.actor),
                                    Priority.MILESTONE))

    # ---- posting -----------------------------------------------------------------------------

    async def thread_ts(self, task: TaskView, actor: str | None = None) -> str:
        """The task thread's ts, posting the top-level message first if there is none yet."""
        future = self._threads.get(task.id)
        if future is None:
            future = self._threads[task.id] = asyncio.get_running_loop().create_future()
            try:
                future.set_result(await self._open_thread(task, actor or task.owner))
            except BaseException as exc:
                del self._threads[task.id]
                future.set_exception(exc)
                future.exception()   # retrieved: waiters re-raise it themselves
                raise
        return await asyncio.shield(future)

    async def _open_thread(self, task: TaskView, actor: str) -> str:
        stored = await self.core.kv_get(THREAD_KEY + str(task.id))
        if stored and stored.get("channel") == self.channel:
            return stored["ts"]
        task = await self.core.get_task(task.id)   # by now it has usually left the queue
        data = await self.poster.post(self.channel, dispatch_message(task, actor), priority=Priority.THREAD_START)
        ts = data["ts"]
        url = await self._permalink(ts)
        await self.core.kv_set(THREAD_KEY + str(task.id), {"channel": self.channel, "ts": ts, "url": url})
        await self.core.kv_set(THREAD_TS_KEY + ts, task.id)
        return ts

    async def _permalink(self, ts: str) -> str | None:
        if self.workspace_url:
            return f"{self.workspace_url}/archives/{self.channel}/p{ts.replace('.', '')}"
        try:
            return (await self.client.chat_getPermalink(channel=self.channel, message_ts=ts)).get("permalink")
        except SlackApiError:
            return None

    async def _reply(self, task: TaskView, payload: dict, priority: Priority, coalesce_key: str | None = None):
        ts = await self.thread_ts(task)
        return await self.poster.post(self.channel, {**payload, "thread_ts": ts}, priority=priority,
                                      coalesce_key=coalesce_key)

    async def _flush_then(self, task: TaskView, payload: dict) -> None:
        await self._flush_output(task.id)
        await self._reply(task, payload, Priority.MILESTONE)

    async def _post_intervention(self, task: TaskView, iv) -> None:
        future = asyncio.get_running_loop().create_future()
        self._intervention_posts[iv.id] = future
        try:
            data = await self._reply(task, render_intervention(task, iv, owner=task.owner), Priority.INTERVENTION)
            await self.core.kv_set(INTERVENTION_KEY + str(iv.id), {"channel": self.channel, "ts": data["ts"]})
            if not future.done():
                future.set_result(data["ts"])
        except BaseException as exc:
            if not future.done():
                future.set_exception(exc)
                future.exception()
            raise

    async def _close_intervention(self, task: TaskView, iv) -> None:
        """Edit the question to say who answered what, with its buttons removed."""
        ts = None
        if iv.id in self._intervention_posts:
            try:
                ts = await self._intervention_posts[iv.id]
            except Exception:
                ts = None
        if ts is None:
            stored = await self.core.kv_get(INTERVENTION_KEY + str(iv.id))
            ts = stored and stored.get("ts")
        if not ts:
            return
        await self.update_budget.acquire_spare()   # the board's edits come first
        await self.client.chat_update(channel=self.channel, ts=ts, **render_intervention_resolved(task, iv))
        self._intervention_posts.pop(iv.id, None)

    # ---- output summaries ----------------------------------------------------------------------

    async def _flush_output_forever(self) -> None:
        while True:
            await asyncio.sleep(min(1.0, self.output_interval_s))
            now = time.monotonic()
            for task_id, due in list(self._output_due.items()):
                if due <= now:
                    self._spawn(self._flush_output(task_id))

    async def _flush_output(self, task_id: int) -> None:
        self._output_due.pop(task_id, None)
        lines = list(self._output.pop(task_id, ()))
        if not lines:
            return
        task = await self.core.get_task(task_id)
        await self._reply(task, output_summary_message(task, lines), Priority.OUTPUT, coalesce_key=f"out:{task_id}")


def _log_failure(task: asyncio.Task) -> None:
    if not task.cancelled() and task.exception() is not None:
        log.warning("a thread message could not be sent: %s", task.exception())
