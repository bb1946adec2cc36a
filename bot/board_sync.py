"""The pinned board: one message, edited in place, at most once per interval.

Every core event marks the board dirty; a single loop renders the latest state and sends
one chat.update per tick. Changes between ticks coalesce into that one edit; an unchanged
rendering sends nothing; a 429 postpones the edit by Retry-After and the edit then carries
the state of that later moment, never a stale one.
"""
from __future__ import annotations

import asyncio
import hashlib
import json
import logging
import time
from datetime import UTC, datetime
from typing import Any

from slack_sdk.errors import SlackApiError
from slack_sdk.web.async_client import AsyncWebClient

from orchestrator import AgentOutput, Orchestrator, Subscription

from .blocks.board import render_board
from .budget import Backoff, MethodBudget
from .slack_errors import Kind, classify, error_of
from .threads import thread_urls

log = logging.getLogger(__name__)
BOARD_KEY = "slack.board"
GONE = {"message_not_found", "cant_update_message", "channel_not_found", "is_archived"}


class BoardSync:
    def __init__(self, core: Orchestrator, client: AsyncWebClient, channel: str, *, interval_s: float = 1.0,
                 naive: bool = False, home_hint: str | None = None, close_flush_s: float = 2.0,
                 update_budget: MethodBudget | None = None, backoff: Backoff | None = None):
        self.core = core
        self.client = client          # a client without the 429 retry handler: we re-render instead
        self.channel = channel
        self.interval_s = interval_s
        self.naive = naive
        self.home_hint = home_hint
        self.close_flush_s = close_flush_s
        self.update_budget = update_budget or MethodBudget()   # chat.update, shared with the threads
        self.backoff = backoff or Backoff(base=max(interval_s, 1.0), cap=60.0)   # after 5xx, outages
        self.ts: str | None = None
        self._dirty = asyncio.Event()
        self._not_before = 0.0        # monotonic time of the next allowed call
        self._ratelimited_until = 0.0
        self._last_digest: str | None = None
        self._loop_task: asyncio.Task | None = None
        self._sub: Subscription | None = None
        # Repairs the loop owes the board; each stays set until Slack accepted it, so a 429 or a
        # network error in the middle only postpones it.
        self._located = False         # the stored board message was checked (or there was none)
        self._repost = False          # the board message is gone: post a new one
        self._repin = False           # the board message is not pinned
        self.updates = 0              # chat.update calls made
        self.ratelimited = 0
        self.last_synced_at = 0.0     # monotonic time the last edit was accepted

    # ---- life cycle ----------------------------------------------------------------------

    async def start(self) -> None:
        self._sub = self.core.bus.subscribe(self._on_event, name="board", max_queued=1000,
                                            ignore=(AgentOutput,))   # output never changes a card
        try:
            await self.ensure_board()   # inline, so the board is in place when start() returns
        except Exception as exc:
            if not _transient(exc):
                raise                   # a wrong channel or a missing scope: say so at start
            log.warning("could not reach the board yet (%s); will keep trying", _describe(exc))
            self._backoff(exc)
        self._loop_task = asyncio.create_task(self._run(), name="board-sync")

    async def close(self) -> None:
        if self._sub:
            await self.core.bus.unsubscribe(self._sub)
            self._sub = None
        if self._loop_task:
            self._loop_task.cancel()
            await asyncio.gather(self._loop_task, return_exceptions=True)
            self._loop_task = None
        # One last edit, so a stopped taskpin does not leave an out-of-date board behind.
        if self._dirty.is_set() and self._located and time.monotonic() >= self._ratelimited_until:
            try:
                await asyncio.wait_for(self._step(), self.close_flush_s)
            except Exception as exc:  # noqa: BLE001 - shutting down; the next start re-renders
                log.info("the board was not updated on shutdown: %s", _describe(exc))

    async def _on_event(self, event) -> None:
        if self.naive and self._located and not (self._repost or self._repin):
            await self._naive_update()
        else:
            self.mark_dirty()

    def mark_dirty(self) -> None:
        self._dirty.set()

    # ---- the board message ---------------------------------------------------------------

    async def render(self) -> dict:
        tasks = await self.core.list_tasks()
        urls = await thread_urls(self.core)
        return render_board(tasks, now=datetime.now(UTC), thread_urls=urls, home_hint=self.home_hint,
                            pull_request_urls=await self.core.pull_requests.urls())

    async def ensure_board(self) -> None:
        """Find the stored board message and make sure it is there and pinned; else post a new one.
        Raises on any Slack error but "the message is gone"; the loop retries what is left."""
        stored = await self.core.kv_get(BOARD_KEY)
        payload = await self.render()
        if stored and stored.get("channel") == self.channel:
            self.ts = stored["ts"]
            try:
                await self.client.chat_update(channel=self.channel, ts=self.ts, **payload)
                self._remember(payload)
            except SlackApiError as exc:
                if error_of(exc) not in GONE:
                    raise
                log.info("the board message is gone (%s); posting a new one", error_of(exc))
                self._repost = True
            else:
                self._located = True
                await self._ensure_pinned()
                return
        self._repost = True
        self._located = True
        await self._post_new(payload)

    async def _post_new(self, payload: dict) -> None:
        response = await self.client.chat_postMessage(channel=self.channel, **payload)
        self.ts = response["ts"]
        self._repost, self._repin = False, True
        self._remember(payload)
        await self.core.kv_set(BOARD_KEY, {"channel": self.channel, "ts": self.ts})
        await self._pin()

    async def _pin(self) -> None:
        """Pin the board. A 429 (or a network error) is raised, so that the loop tries again."""
        self._repin = True
        try:
            await self.client.pins_add(channel=self.channel, timestamp=self.ts)
        except SlackApiError as exc:
            if _transient(exc):
                raise
            if error_of(exc) != "already_pinned":
                log.warning("could not pin the board: %s", _describe(exc))
        self._repin = False

    async def _ensure_pinned(self) -> None:
        try:
            response = await self.client.pins_list(channel=self.channel)
            items: list[dict[str, Any]] = response.get("items", [])
            pinned = {item.get("message", {}).get("ts") for item in items}
        except SlackApiError as exc:
            if _transient(exc):
                self._repin = True      # cannot tell: pinning again is harmless (already_pinned)
                raise
            log.warning("could not list pins: %s", _describe(exc))
            return
        if self.ts not in pinned:
            await self._pin()

    async def on_unpinned(self, ts: str) -> None:
        if ts and ts == self.ts:
            log.info("the board was unpinned; pinning it again")
            self._repin = True
            self.mark_dirty()

    async def on_deleted(self, ts: str) -> None:
        if ts and ts == self.ts:
            log.info("the board was deleted; posting it again")
            self._repost = True
            self.mark_dirty()

    def _remember(self, payload: dict) -> None:
        self._last_digest = _digest(payload)
        self.last_synced_at = time.monotonic()

    # ---- the coalescing loop -------------------------------------------------------------

    async def _run(self) -> None:
        while True:
            await self._dirty.wait()
            wait = self._not_before - time.monotonic()
            if wait > 0:
                await asyncio.sleep(wait)
            self._dirty.clear()
            try:
                await self._step()
                self.backoff.reset()
            except asyncio.CancelledError:
                raise
            except Exception as exc:
                failure = classify(exc)
                if failure is None:
                    log.exception("board sync failed; will try again")
                elif failure.kind in (Kind.REFUSED, Kind.CONTENT):
                    log.warning("Slack refused a board update (%s); will try again", failure.reason)
                else:   # the outage itself is logged once, by the health tracker
                    log.debug("board sync postponed: %s", failure.reason)
                self._backoff(exc)

    def _backoff(self, exc: BaseException) -> None:
        """Try again later: after Retry-After for a 429, else with exponential backoff."""
        if isinstance(exc, SlackApiError) and _status(exc) == 429:
            self.ratelimited += 1
            delay = _retry_after(exc)
            self._ratelimited_until = time.monotonic() + delay
            self.update_budget.pause(delay)
        else:
            delay = self.backoff.next_delay()
        self._not_before = max(self._not_before, time.monotonic() + delay)
        self._dirty.set()            # re-render after the wait: the latest state, not this one

    async def _step(self) -> None:
        """Whatever the board needs now: found, re-posted, re-pinned, then edited if it changed."""
        if not self._located:
            await self.ensure_board()
        if self._repost:
            await self._post_new(await self.render())
        if self._repin:
            await self._pin()
        await self._edit()

    async def sync_once(self) -> bool:
        """Render now and edit the board if it changed; True when an edit was sent and accepted.
        A 429 schedules the next attempt after Retry-After (with the state of that moment)."""
        try:
            return await self._edit()
        except SlackApiError as exc:
            if _status(exc) != 429:
                raise
            self._backoff(exc)
            return False

    async def _edit(self) -> bool:
        if self.ts is None:
            return False
        payload = await self.render()
        if _digest(payload) == self._last_digest:
            return False
        wait = self.update_budget.wait_for()
        if wait > 0:   # out of chat.update budget: edit later, with the state of that moment
            self._not_before = time.monotonic() + wait
            self._dirty.set()
            return False
        self.update_budget.take()
        self._not_before = time.monotonic() + self.interval_s
        try:
            self.updates += 1
            await self.client.chat_update(channel=self.channel, ts=self.ts, **payload)
        except SlackApiError as exc:
            if error_of(exc) in GONE:
                log.info("the board message is gone (%s); posting a new one", error_of(exc))
                self._repost = True
                await self._post_new(payload)
                return True
            raise
        self._remember(payload)
        return True

    async def _naive_update(self) -> None:
        """Benchmark baseline: one chat.update per event, no coalescing."""
        if self.ts is None:   # not posted yet (callers check _located): the loop posts it
            self.mark_dirty()
            return
        payload = await self.render()
        self.updates += 1
        try:
            await self.client.chat_update(channel=self.channel, ts=self.ts, **payload)
            self._remember(payload)
        except SlackApiError as exc:
            if _status(exc) == 429:
                self.ratelimited += 1
                await asyncio.sleep(_retry_after(exc))
            else:
                log.warning("board update failed: %s", _describe(exc))
            self.mark_dirty()        # the loop repairs or catches up


def _status(exc: SlackApiError) -> int | None:
    failure = classify(exc)
    return 429 if failure is not None and failure.kind is Kind.RATELIMITED else None


def _retry_after(exc: SlackApiError) -> float:
    failure = classify(exc)
    return failure.retry_after if failure is not None else 1.0


def _transient(exc: BaseException) -> bool:
    """A 429, a Slack server error or a network problem: worth trying again later."""
    failure = classify(exc)
    return failure is not None and failure.kind in (Kind.RATELIMITED, Kind.UNREACHABLE)


def _describe(exc: BaseException) -> str:
    failure = classify(exc)
    return failure.reason if failure is not None else f"{type(exc).__name__}: {exc}"


def _digest(payload: dict) -> str:
    return hashlib.sha256(json.dumps(payload, sort_keys=True).encode()).hexdigest()
