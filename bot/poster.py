"""The outbox sender: every thread message goes into the core's outbox first, then to Slack, paced
per channel, most urgent first, and nothing is dropped.

Slack allows about one message per second per channel, with short bursts; every task thread
lives in the board channel, so all of taskpin's posts share that budget. Messages of one thread
go out in the order they were written (a later one never overtakes an earlier one); across
threads, the thread with the most urgent message waiting goes first (interventions first).

A message leaves the outbox only when Slack answered ok. A 429 waits Retry-After; a 5xx, a
timeout, an outage or a refused token waits with capped exponential backoff and tries again.
When the outcome of an attempt is unknown (a timeout, a 5xx, a kill -9 right after the post),
the message is looked up by the marker in its metadata before it is sent again. A message Slack
refuses for its content is sent as plain text; one Slack refuses for good (channel gone) is
marked failed with the error, in one log line, and its thread moves on.
"""
from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import logging
import time
from collections import deque
from collections.abc import Awaitable, Callable
from enum import IntEnum
from typing import Any

from slack_sdk.web.async_client import AsyncWebClient

from orchestrator import Outbox, OutboxItem
from orchestrator.crashpoints import crash_point

from .blocks.text import plain_fallback
from .budget import Backoff, MethodBudget, TokenBucket
from .slack_errors import Failure, Kind, classify

log = logging.getLogger(__name__)
SentHook = Callable[[OutboxItem, str], Awaitable[None]]
LOOKUP_MARGIN_S = 60   # clocks differ: look this much before the row was written


class Priority(IntEnum):
    INTERVENTION = 0
    THREAD_START = 1
    MILESTONE = 2
    OUTPUT = 3


def marker_of(item: OutboxItem) -> dict:
    """The metadata that identifies this message in Slack (set by the writer, else by row id)."""
    meta = item.payload.get("metadata")
    if isinstance(meta, dict) and meta.get("event_type"):
        return meta
    return {"event_type": "taskpin_message", "event_payload": {"outbox_id": item.id}}


class _Channel:
    def __init__(self, rate: float, burst: int):
        self.threads: dict[str, deque[OutboxItem]] = {}
        self.bucket = TokenBucket(rate, burst)
        self.backoff = Backoff()
        self.not_before = 0.0
        self.wakeup = asyncio.Event()
        self.worker: asyncio.Task | None = None
        self.lock = asyncio.Lock()      # a row is never rewritten while it is being sent

    def next_item(self, ready=None) -> OutboxItem | None:
        """The next message of the thread whose most urgent waiting message is most urgent (then
        oldest). With `ready(item)`, one its budget lets go now comes first: a question to post
        never waits behind an edit that waits for chat.update's budget, in another thread or in
        its own (posts keep their order, and so do edits; only a post may pass waiting edits)."""
        best, best_rank = None, None
        for queue in self.threads.values():
            if not queue:
                continue
            candidate = queue[0]
            if ready is not None and not ready(candidate):
                candidate = next((i for i in queue if i.op == "post"), candidate)
                if candidate.op == "post" and not ready(candidate):
                    candidate = queue[0]
            rank = (ready is not None and not ready(candidate), min(i.priority for i in queue), candidate.id)
            if best_rank is None or rank < best_rank:
                best, best_rank = candidate, rank
        return best

    def replace(self, item: OutboxItem) -> None:
        queue = self.threads.get(item.thread)
        if queue is None:
            return
        for i, old in enumerate(queue):
            if old.id == item.id:
                queue[i] = item
                return

    def pop(self, item: OutboxItem) -> None:
        queue = self.threads.get(item.thread)
        if not queue:
            return
        for old in queue:
            if old.id == item.id:
                queue.remove(old)
                break
        if not queue:
            del self.threads[item.thread]

    @property
    def pending(self) -> int:
        return sum(len(q) for q in self.threads.values())


class ChannelPoster:
    def __init__(self, client: AsyncWebClient, outbox: Outbox, *, rate_per_s: float = 1.0, burst: int = 3,
                 update_budget: MethodBudget | None = None, backoff_s: float = 1.0, backoff_max_s: float = 60.0):
        self.client = client
        self.outbox = outbox
        self.rate, self.burst = rate_per_s, burst
        self.update_budget = update_budget or MethodBudget()   # chat.update, shared with the board
        self.backoff_s, self.backoff_max_s = backoff_s, backoff_max_s
        self._channels: dict[str, _Channel] = {}
        self._hooks: dict[str, list[SentHook]] = {}
        self._closed = False
        self.sent = 0
        self.failed = 0

    # ---- life cycle ----------------------------------------------------------------------

    async def start(self) -> None:
        """Send what a previous run left in the outbox."""
        for item in await self.outbox.pending():
            self._queue(item)
        if self.pending:
            log.info("%d message%s from before the restart still to post", self.pending,
                     "s" if self.pending != 1 else "")

    async def close(self) -> None:
        self._closed = True
        workers = [ch.worker for ch in self._channels.values() if ch.worker]
        for ch in self._channels.values():
            self.update_budget.withdraw(ch)
        for worker in workers:
            worker.cancel()
        await asyncio.gather(*workers, return_exceptions=True)

    def on_sent(self, kind: str, hook: SentHook) -> None:
        """Call `hook(item, ts)` once a message of this kind is in Slack (also when it was late)."""
        self._hooks.setdefault(kind, []).append(hook)

    @property
    def pending(self) -> int:
        return sum(ch.pending for ch in self._channels.values())

    # ---- writing ---------------------------------------------------------------------------

    async def post(self, channel: str, thread: str, payload: dict[str, Any], *, kind: str, priority: Priority,
                   key: str | None = None, parent: str | None = None, coalesce: bool = False) -> OutboxItem:
        """Record a chat.postMessage in the outbox (a reply in `parent`'s thread, if given); it is
        sent as soon as the pace allows. Returns at once, with the stored row."""
        return await self._add(channel, thread, payload, kind=kind, op="post", priority=priority, key=key,
                               parent=parent, coalesce=coalesce)

    async def update(self, channel: str, thread: str, payload: dict[str, Any], *, kind: str, priority: Priority,
                     key: str | None = None, parent: str | None = None, coalesce: bool = False) -> OutboxItem:
        """Record a chat.update of the message `parent` names (or of payload["ts"]); with
        `coalesce`, it replaces an edit of the same kind still waiting in that thread."""
        return await self._add(channel, thread, payload, kind=kind, op="update", priority=priority, key=key,
                               parent=parent, coalesce=coalesce)

    async def _add(self, channel: str, thread: str, payload: dict, **fields) -> OutboxItem:
        async with self._channel(channel).lock:     # per channel: the DMs of fifty owners go in together
            item, new = await self.outbox.add(channel=channel, thread=thread, payload=payload, **fields)
            if new:
                self._queue(item)
            elif not item.done:
                self._channel(item.channel).replace(item)    # coalesced: the newest content goes
        return item

    def _channel(self, channel: str) -> _Channel:
        ch = self._channels.get(channel)
        if ch is None:
            ch = self._channels[channel] = _Channel(self.rate, self.burst)
            ch.backoff = Backoff(self.backoff_s, self.backoff_max_s)
        return ch

    def _queue(self, item: OutboxItem) -> None:
        ch = self._channel(item.channel)
        queue = ch.threads.setdefault(item.thread, deque())
        if any(old.id == item.id for old in queue):
            return
        queue.append(item)
        ch.wakeup.set()
        if not self._closed and (ch.worker is None or ch.worker.done()):
            ch.worker = asyncio.get_running_loop().create_task(self._work(item.channel),
                                                               name=f"poster:{item.channel}")

    # ---- sending ---------------------------------------------------------------------------

    async def _work(self, channel: str) -> None:
        ch = self._channels[channel]
        while True:
            item = ch.next_item(ready=lambda i: self._budget_wait(ch, i) <= 0)
            if item is None:
                self.update_budget.withdraw(ch)
                ch.wakeup.clear()
                await ch.wakeup.wait()
                continue
            budget_wait = self._budget_wait(ch, item)
            if item.op == "update" and budget_wait > 0:
                self.update_budget.queue(ch, item.priority)     # its place among the other channels' edits
            elif item.op == "update":
                self.update_budget.withdraw(ch)
            wait = max(ch.not_before - time.monotonic(), budget_wait)
            if wait > 0:        # until its budget allows, or until a new message comes: it may be ready now
                ch.wakeup.clear()
                with contextlib.suppress(TimeoutError):   # not wait_for: it can swallow close()'s cancel (3.11)
                    async with asyncio.timeout(wait):
                        await ch.wakeup.wait()
                continue
            if item.op == "post":
                ch.bucket.take()
            else:
                self.update_budget.take(ch)
            try:
                done = await self._send(ch, item)
            except asyncio.CancelledError:
                raise
            except Exception:   # a bug, not Slack: show it, and do not loop on it
                log.exception("the %s message #%s could not be handled; it is marked failed", item.kind, item.id)
                await self._give_up(ch, item, "internal error")
                done = True
            if done:
                ch.pop(item)
                ch.backoff.reset()

    def _budget_wait(self, ch: _Channel, item: OutboxItem) -> float:
        return (ch.bucket.wait_time() if item.op == "post"
                else self.update_budget.wait_for(ch, item.priority))

    async def _send(self, ch: _Channel, item: OutboxItem) -> bool:
        """One attempt; True when the row is done (sent or failed for good)."""
        target = await self._target(item)
        if target is None:
            return await self._give_up(ch, item, "the message it belongs to could not be posted", quiet=True)
        if target == "wait":
            ch.not_before = time.monotonic() + 0.2
            return False
        try:
            if item.op == "post" and item.maybe_sent:
                found = await self._find(item, target)
                if found:
                    log.info("the %s message #%s was already in Slack; not posting it again", item.kind, item.id)
                    await self._finish(item, found)
                    return True
            if item.op == "post":
                async with ch.lock:
                    await self.outbox.attempting(item.id)
                    item = dataclasses.replace(item, maybe_sent=True, attempts=item.attempts + 1)
                    ch.replace(item)
                crash_point(f"outbox_attempt:{item.kind}")
                response = await self.client.chat_postMessage(**self._post_args(item, target))
                crash_point(f"outbox_posted:{item.kind}")
                ts = response["ts"]
            else:
                args = {k: v for k, v in item.payload.items() if k != "ts"}
                response = await self.client.chat_update(channel=item.channel, ts=target, **args)
                ts = target
        except Exception as exc:
            failure = classify(exc)
            if failure is None:
                raise
            return await self._failed(ch, item, failure)
        await self._finish(item, ts)
        return True

    def _post_args(self, item: OutboxItem, thread_ts: str) -> dict:
        args = {**item.payload, "channel": item.channel, "metadata": marker_of(item)}
        if thread_ts:
            args["thread_ts"] = thread_ts
        return args

    async def _target(self, item: OutboxItem) -> str | None:
        """The ts this row needs: the thread to reply in ("" for a top-level post) or the message
        to edit. None when that message could not be posted; "wait" when it is not out yet."""
        given = item.payload.get("ts" if item.op == "update" else "thread_ts")
        if given:
            return str(given)
        if not item.parent:
            return "" if item.op == "post" else None
        parent = await self.outbox.get(item.parent)
        if parent is None or (parent.done and not parent.ref):
            return None
        return parent.ref if parent.ref else "wait"

    async def _find(self, item: OutboxItem, thread_ts: str) -> str | None:
        """The ts of this row's message if it is in Slack already (a post whose outcome was lost)."""
        marker = marker_of(item)
        oldest = f"{max(0.0, item.created_at.timestamp() - LOOKUP_MARGIN_S):.6f}"
        cursor = None
        while True:
            if thread_ts:
                page = await self.client.conversations_replies(channel=item.channel, ts=thread_ts, limit=200,
                                                               include_all_metadata=True, cursor=cursor)
            else:
                page = await self.client.conversations_history(channel=item.channel, oldest=oldest, limit=200,
                                                               include_all_metadata=True, cursor=cursor)
            for message in page.get("messages") or []:
                meta = message.get("metadata") or {}
                if meta.get("event_type") == marker["event_type"] and \
                        meta.get("event_payload") == marker["event_payload"]:
                    return message["ts"]
            cursor = (page.get("response_metadata") or {}).get("next_cursor")
            if not cursor:
                return None

    async def _failed(self, ch: _Channel, item: OutboxItem, failure: Failure) -> bool:
        if failure.kind is Kind.CONTENT:
            return await self._fall_back(ch, item, failure)
        if failure.kind is Kind.REFUSED:
            return await self._give_up(ch, item, failure.reason)
        if item.op == "post" and not failure.ambiguous:
            await self.outbox.not_sent(item.id, failure.reason)     # surely not posted: no lookup needed
            ch.replace(dataclasses.replace(item, maybe_sent=False, error=failure.reason))
        if failure.kind is Kind.RATELIMITED:
            (ch.bucket if item.op == "post" else self.update_budget).pause(failure.retry_after)
            ch.not_before = time.monotonic() + failure.retry_after
        else:
            delay = ch.backoff.next_delay()
            log.debug("the %s message #%s waits %.1fs: %s", item.kind, item.id, delay, failure.reason)
            ch.not_before = time.monotonic() + delay
        return False

    async def _fall_back(self, ch: _Channel, item: OutboxItem, failure: Failure) -> bool:
        """Slack refused the content: the same words in plain text, in the same place."""
        if item.error and item.error.startswith("refused:"):
            return await self._give_up(ch, item, f"{failure.reason}, also as plain text")
        note = f"refused: {failure.reason}; sent as plain text"
        payload: dict[str, Any] = {"text": plain_fallback(item.payload),
                                   "blocks": [] if item.op == "update" else None}
        payload = {k: v for k, v in payload.items() if v is not None}
        for keep in ("ts", "thread_ts", "metadata"):
            if keep in item.payload:
                payload[keep] = item.payload[keep]
        log.warning("Slack refused the %s message #%s (%s); sending it as plain text", item.kind, item.id,
                    failure.reason)
        async with ch.lock:
            await self.outbox.set_payload(item.id, payload)
            await self.outbox.not_sent(item.id, note)
            ch.replace(dataclasses.replace(item, payload=payload, error=note, maybe_sent=False))
        return False

    async def _give_up(self, ch: _Channel, item: OutboxItem, reason: str, *, quiet: bool = False) -> bool:
        (log.info if quiet else log.warning)("the %s message #%s was not posted: %s", item.kind, item.id, reason)
        await self.outbox.failed(item.id, reason)
        self.failed += 1
        return True

    async def _finish(self, item: OutboxItem, ts: str) -> None:
        if item.error and item.error.startswith("refused:"):
            await self.outbox.failed(item.id, item.error, ref=ts)
        else:
            await self.outbox.sent(item.id, ts)
        self.sent += 1
        for hook in self._hooks.get(item.kind, ()):
            try:
                await hook(dataclasses.replace(item, ref=ts), ts)
            except Exception:   # the message is out; a hook's failure must not resend it
                log.exception("after posting the %s message #%s", item.kind, item.id)
