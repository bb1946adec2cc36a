"""Paced chat.postMessage per channel, most urgent first.

Slack allows about one message per second per channel, with short bursts. Every task
thread lives in the board channel, so all of taskpin's posts share that one budget:
interventions go first, then milestones, then output summaries (which coalesce per task
while they wait).
"""
from __future__ import annotations

import asyncio
import heapq
import itertools
import logging
from dataclasses import dataclass, field
from enum import IntEnum
from typing import Any

from slack_sdk.errors import SlackApiError
from slack_sdk.web.async_client import AsyncWebClient

from .budget import TokenBucket

log = logging.getLogger(__name__)


class Priority(IntEnum):
    INTERVENTION = 0
    THREAD_START = 1
    MILESTONE = 2
    OUTPUT = 3


@dataclass(order=True)
class _Item:
    priority: int
    seq: int
    channel: str = field(compare=False)
    payload: dict = field(compare=False)
    future: asyncio.Future = field(compare=False)
    coalesce_key: str | None = field(compare=False, default=None)
    cancelled: bool = field(compare=False, default=False)


class ChannelPoster:
    def __init__(self, client: AsyncWebClient, *, rate_per_s: float = 1.0, burst: int = 3):
        self.client = client
        self.rate, self.burst = rate_per_s, burst
        self._queues: dict[str, list[_Item]] = {}
        self._wakeups: dict[str, asyncio.Event] = {}
        self._workers: dict[str, asyncio.Task] = {}
        self._buckets: dict[str, TokenBucket] = {}
        self._coalesce: dict[str, _Item] = {}
        self._seq = itertools.count()
        self.sent = 0

    def post(self, channel: str, payload: dict[str, Any], *, priority: Priority,
             coalesce_key: str | None = None) -> asyncio.Future:
        """Queue a chat.postMessage; the future resolves to Slack's response data (or None if superseded)."""
        loop = asyncio.get_running_loop()
        if coalesce_key and (old := self._coalesce.get(coalesce_key)) and not old.future.done():
            old.payload = payload   # still waiting: send the newest content in its place
            return old.future
        item = _Item(int(priority), next(self._seq), channel, payload, loop.create_future(), coalesce_key)
        if coalesce_key:
            self._coalesce[coalesce_key] = item
        heapq.heappush(self._queues.setdefault(channel, []), item)
        self._wakeup(channel).set()
        if channel not in self._workers or self._workers[channel].done():
            self._workers[channel] = loop.create_task(self._work(channel), name=f"poster:{channel}")
        return item.future

    def _wakeup(self, channel: str) -> asyncio.Event:
        return self._wakeups.setdefault(channel, asyncio.Event())

    async def _work(self, channel: str) -> None:
        queue = self._queues[channel]
        bucket = self._buckets.setdefault(channel, TokenBucket(self.rate, self.burst))
        while True:
            if not queue:
                self._wakeup(channel).clear()
                await self._wakeup(channel).wait()
                continue
            delay = bucket.wait_time()
            if delay > 0:
                await asyncio.sleep(delay)
                continue
            item = heapq.heappop(queue)   # the most urgent item at the moment of sending
            if item.coalesce_key and self._coalesce.get(item.coalesce_key) is item:
                del self._coalesce[item.coalesce_key]
            bucket.take()
            try:
                response = await self.client.chat_postMessage(channel=channel, **item.payload)
                self.sent += 1
                if not item.future.done():
                    item.future.set_result(response.data)
            except SlackApiError as exc:
                if exc.response.status_code == 429:
                    retry_after = float(exc.response.headers.get("Retry-After", 1))
                    bucket.pause(retry_after)
                    heapq.heappush(queue, item)
                    continue
                log.warning("chat.postMessage in %s failed: %s", channel, exc.response.get("error"))
                if not item.future.done():
                    item.future.set_exception(exc)
            except Exception as exc:
                log.warning("chat.postMessage in %s failed: %s", channel, exc)
                if not item.future.done():
                    item.future.set_exception(exc)

    @property
    def pending(self) -> int:
        return sum(len(q) for q in self._queues.values())

    async def close(self) -> None:
        for task in self._workers.values():
            task.cancel()
        for queue in self._queues.values():
            for item in queue:
                if not item.future.done():
                    item.future.cancel()
