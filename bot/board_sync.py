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
from datetime import datetime, timezone

from slack_sdk.errors import SlackApiError
from slack_sdk.web.async_client import AsyncWebClient

from orchestrator import AgentOutput, Orchestrator

from .blocks.board import render_board
from .threads import thread_urls

log = logging.getLogger(__name__)
BOARD_KEY = "slack.board"
GONE = {"message_not_found", "cant_update_message", "channel_not_found", "is_archived"}


class BoardSync:
    def __init__(self, core: Orchestrator, client: AsyncWebClient, channel: str, *, interval_s: float = 1.0,
                 naive: bool = False, home_hint: str | None = None):
        self.core = core
        self.client = client          # a client without the 429 retry handler: we re-render instead
        self.channel = channel
        self.interval_s = interval_s
        self.naive = naive
        self.home_hint = home_hint
        self.ts: str | None = None
        self._dirty = asyncio.Event()
        self._not_before = 0.0        # monotonic time of the next allowed call
        self._last_digest: str | None = None
        self._loop_task: asyncio.Task | None = None
        self._sub = None
        self.updates = 0              # chat.update calls made
        self.ratelimited = 0
        self.last_synced_at = 0.0     # monotonic time the last edit was accepted

    # ---- life cycle ----------------------------------------------------------------------

    async def start(self) -> None:
        await self.ensure_board()
        self._sub = self.core.bus.subscribe(self._on_event, name="board", max_queued=1000)
        self._loop_task = asyncio.create_task(self._run(), name="board-sync")

    async def close(self) -> None:
        if self._sub:
            await self.core.bus.unsubscribe(self._sub)
        if self._loop_task:
            self._loop_task.cancel()

    async def _on_event(self, event) -> None:
        if isinstance(event, AgentOutput):
            return   # output never changes a card
        if self.naive:
            await self._naive_update()
        else:
            self.mark_dirty()

    def mark_dirty(self) -> None:
        self._dirty.set()

    # ---- the board message ---------------------------------------------------------------

    async def render(self) -> dict:
        tasks = await self.core.list_tasks()
        urls = await thread_urls(self.core)
        return render_board(tasks, now=datetime.now(timezone.utc), thread_urls=urls, home_hint=self.home_hint)

    async def ensure_board(self) -> None:
        """Find the stored board message and make sure it is there and pinned; else post a new one."""
        stored = await self.core.kv_get(BOARD_KEY)
        payload = await self.render()
        if stored and stored.get("channel") == self.channel:
            self.ts = stored["ts"]
            try:
                await self.client.chat_update(channel=self.channel, ts=self.ts, **payload)
                self._remember(payload)
                await self._ensure_pinned()
                return
            except SlackApiError as exc:
                if exc.response.get("error") not in GONE:
                    raise
                log.info("the board message is gone (%s); posting a new one", exc.response.get("error"))
        await self._post_new(payload)

    async def _post_new(self, payload: dict) -> None:
        response = await self.client.chat_postMessage(channel=self.channel, **payload)
        self.ts = response["ts"]
        await self.core.kv_set(BOARD_KEY, {"channel": self.channel, "ts": self.ts})
        self._remember(payload)
        await self._pin()

    async def _pin(self) -> None:
        try:
            await self.client.pins_add(channel=self.channel, timestamp=self.ts)
        except SlackApiError as exc:
            if exc.response.get("error") != "already_pinned":
                log.warning("could not pin the board: %s", exc.response.get("error"))

    async def _ensure_pinned(self) -> None:
        try:
            response = await self.client.pins_list(channel=self.channel)
            pinned = {item.get("message", {}).get("ts") for item in response.get("items", [])}
        except SlackApiError as exc:
            log.warning("could not list pins: %s", exc.response.get("error"))
            return
        if self.ts not in pinned:
            await self._pin()

    async def on_unpinned(self, ts: str) -> None:
        if ts == self.ts:
            log.info("the board was unpinned; pinning it again")
            await self._pin()

    async def on_deleted(self, ts: str) -> None:
        if ts == self.ts:
            log.info("the board was deleted; posting it again")
            await self._post_new(await self.render())

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
                await self.sync_once()
            except asyncio.CancelledError:
                raise
            except Exception:
                log.exception("board sync failed; will try again")
                self._not_before = time.monotonic() + max(self.interval_s, 5)
                self._dirty.set()

    async def sync_once(self) -> bool:
        """Render now and edit the board if it changed; True when an edit was sent and accepted."""
        payload = await self.render()
        if _digest(payload) == self._last_digest:
            return False
        self._not_before = time.monotonic() + self.interval_s
        try:
            self.updates += 1
            await self.client.chat_update(channel=self.channel, ts=self.ts, **payload)
        except SlackApiError as exc:
            error = exc.response.get("error")
            if exc.response.status_code == 429:
                self.ratelimited += 1
                retry_after = float(exc.response.headers.get("Retry-After", 1))
                self._not_before = time.monotonic() + retry_after
                self._dirty.set()          # re-render after the wait: the latest state, not this one
                return False
            if error in GONE:
                await self._post_new(await self.render())
                return True
            raise
        self._remember(payload)
        return True

    async def _naive_update(self) -> None:
        """Benchmark baseline: one chat.update per event, no coalescing."""
        payload = await self.render()
        self.updates += 1
        try:
            await self.client.chat_update(channel=self.channel, ts=self.ts, **payload)
            self._remember(payload)
        except SlackApiError as exc:
            if exc.response.status_code == 429:
                self.ratelimited += 1
                await asyncio.sleep(float(exc.response.headers.get("Retry-After", 1)))
            else:
                log.warning("board update failed: %s", exc.response.get("error"))


def _digest(payload: dict) -> str:
    return hashlib.sha256(json.dumps(payload, sort_keys=True).encode()).hexdigest()
