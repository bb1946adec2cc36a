"""Every owner learns at once that an agent waits for them.

The board channel takes about one message per second, so the 50th of 50 simultaneous questions
reaches its task's thread ~47 s later. A direct message lives in a channel of its own, with its
own pace: each owner gets ONE message, posted a moment after their first question (so questions
asked together are counted together) and edited as more come and as they are answered. It says
how many wait and links each thread. The Home tab's "Waiting for you" list is republished with it.

Like every thread message, the DM and its edits go into the outbox first (ChannelPoster), so a
restart or an outage delays them but loses none; the poster paces each DM channel on its own.
"""
from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable

from slack_sdk.web.async_client import AsyncWebClient

from orchestrator import (
    InterventionRequested,
    InterventionResolved,
    InterventionView,
    Orchestrator,
    Subscription,
    TaskState,
    TaskStateChanged,
    TaskView,
)

from .blocks.waiting import render_waiting_dm
from .poster import ChannelPoster, Priority
from .slack_errors import describe
from .threads import thread_urls

log = logging.getLogger(__name__)

GATHER_S = 0.03              # questions asked within this of the first go into its message
HOME_AFTER_S = 1.0           # the Home tab follows the DM; it must not compete with a burst of DMs
URLS_FRESH_S = 0.5           # thread links: one store read serves every DM sent within this
IM_KEY = "slack.im:"         # + user id -> the app's DM channel with that user


class OwnerNotifier:
    def __init__(self, core: Orchestrator, client: AsyncWebClient, poster: ChannelPoster, *,
                 gather_s: float = GATHER_S, home: Callable[[str], Awaitable[None]] | None = None):
        self.core = core
        self.client = client
        self.poster = poster
        self.gather_s = gather_s
        self.home = home                                       # republish a user's Home tab
        self.waiting: dict[str, dict[int, tuple[TaskView, InterventionView]]] = {}   # owner -> iv id -> ...
        self._im: dict[str, str] = {}                          # owner -> DM channel id
        self._opening: dict[str, asyncio.Task] = {}
        self._live: dict[str, str] = {}                        # owner -> outbox key of the DM being edited
        self._scheduled: dict[str, asyncio.Task] = {}
        self._sending: dict[str, asyncio.Lock] = {}             # one send per owner at a time
        self._background: set[asyncio.Task] = set()
        self._urls: tuple[float, asyncio.Task] | None = None      # (when read, the read)
        self._home_due: set[str] = set()
        self._sub: Subscription | None = None

    async def start(self) -> None:
        """Questions that were already waiting (a restart) are counted from the store."""
        tasks = {t.id: t for t in await self.core.list_tasks(states=[TaskState.BLOCKED, TaskState.IN_PROGRESS])}
        for iv in await self.core.pending_interventions():
            if iv.task_id in tasks:
                self._wait(tasks[iv.task_id], iv)
        self._sub = self.core.bus.subscribe(self._on_event, name="owner-dm")

    async def close(self) -> None:
        if self._sub:
            await self.core.bus.unsubscribe(self._sub)
        for task in [*self._background, *self._scheduled.values(), *self._opening.values()]:
            task.cancel()

    def _spawn(self, coro) -> asyncio.Task:
        task = asyncio.create_task(coro)
        self._background.add(task)
        task.add_done_callback(self._background.discard)
        return task

    # ---- events -------------------------------------------------------------------------

    async def _on_event(self, event) -> None:
        match event:
            case TaskStateChanged(task=task, to_state=TaskState.IN_PROGRESS):
                self._spawn(self._channel_of(task.owner))     # opened ahead: no call on the question's path
            case InterventionRequested(task=task, intervention=iv):
                self._wait(task, iv)
                self._schedule(task.owner)
            case InterventionResolved(task=task, intervention=iv):
                if self.waiting.get(task.owner, {}).pop(iv.id, None) is not None:
                    self._schedule(task.owner)

    def _wait(self, task: TaskView, iv: InterventionView) -> None:
        self.waiting.setdefault(task.owner, {})[iv.id] = (task, iv)

    def _schedule(self, owner: str) -> None:
        """One send per owner per moment, whatever number of questions come in meanwhile."""
        if owner not in self._scheduled:
            self._scheduled[owner] = self._spawn(self._send_soon(owner))

    async def _send_soon(self, owner: str) -> None:
        await asyncio.sleep(self.gather_s)
        del self._scheduled[owner]
        try:
            await self._send(owner)
        except Exception as exc:   # the next question or answer of this owner tries again
            log.warning("could not tell %s what waits for them: %s", owner, describe(exc))
        if self.home is not None and owner not in self._home_due:
            self._home_due.add(owner)
            self._spawn(self._refresh_home(owner))

    async def _refresh_home(self, owner: str) -> None:
        await asyncio.sleep(HOME_AFTER_S)
        self._home_due.discard(owner)
        if self.home is not None:
            await self.home(owner)

    async def _thread_urls(self) -> dict[int, str]:
        loop = asyncio.get_running_loop()
        if self._urls is None or loop.time() - self._urls[0] > URLS_FRESH_S:
            self._urls = (loop.time(), loop.create_task(thread_urls(self.core)))
        return await asyncio.shield(self._urls[1])

    # ---- the owner's message ---------------------------------------------------------------

    async def _send(self, owner: str) -> None:
        async with self._sending.setdefault(owner, asyncio.Lock()):
            await self._send_locked(owner)

    async def _send_locked(self, owner: str) -> None:
        items = sorted(self.waiting.get(owner, {}).values(), key=lambda pair: pair[1].id)
        key = self._live.get(owner)
        if not items and key is None:
            return
        channel = await self._channel_of(owner)
        if channel is None:
            return
        payload = render_waiting_dm(owner, items, await self._thread_urls())
        thread = f"dm:{owner}"
        if key is None:
            # The first question of a wave names it: a restart re-recording it finds the same row.
            key = self._live[owner] = f"dm:{owner}:{items[0][1].id}"
            await self.poster.post(channel, thread, payload, kind="owner_dm", priority=Priority.INTERVENTION, key=key)
        else:
            await self.poster.update(channel, thread, payload, kind="owner_dm_edit", priority=Priority.INTERVENTION,
                                     parent=key, coalesce=True)
        if not items:
            del self._live[owner]          # the next question is news again: a new message

    async def _channel_of(self, owner: str) -> str | None:
        if owner in self._im:
            return self._im[owner]
        opening = self._opening.get(owner)
        if opening is None:
            opening = self._opening[owner] = asyncio.create_task(self._open(owner))
        try:
            return await asyncio.shield(opening)
        except Exception as exc:
            log.warning("could not open a direct message with %s: %s", owner, describe(exc))
            return None
        finally:
            if opening.done():
                self._opening.pop(owner, None)

    async def _open(self, owner: str) -> str:
        stored = await self.core.kv_get(IM_KEY + owner)
        if stored:
            self._im[owner] = stored
            return stored
        response = await self.client.conversations_open(users=owner)
        channel = response["channel"]["id"]
        await self.core.kv_set(IM_KEY + owner, channel)
        self._im[owner] = channel
        return channel
