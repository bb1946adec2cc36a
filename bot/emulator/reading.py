"""Reading the workspace the way a user sees it, for assertions."""
from __future__ import annotations

import asyncio
import copy
import inspect
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from .blockkit import text_of

if TYPE_CHECKING:
    from .state import Workspace


class Reading:
    """Mixin for SlackEmulator. Everything returned is a copy: mutate freely."""

    if TYPE_CHECKING:   # what the mixin uses of SlackEmulator (bot/emulator/server.py, driver.py)
        ws: Workspace

        def _user(self, ref: str) -> dict: ...

    def messages(self, channel: str) -> list[dict]:
        """Top-level messages of a channel, oldest first."""
        ch = self.ws.require_channel(channel)
        return [copy.deepcopy(ch.msgs[ts]) for ts in ch.top]

    def message(self, channel: str, ts: str) -> dict | None:
        msg = self.ws.require_channel(channel).msgs.get(ts)
        return copy.deepcopy(msg) if msg is not None else None

    def thread(self, channel: str, ts: str) -> list[dict]:
        """Replies in the thread under `ts` (without the parent), oldest first."""
        ch = self.ws.require_channel(channel)
        return [copy.deepcopy(ch.msgs[r]) for r in ch.replies.get(ts, [])]

    def pinned(self, channel: str) -> list[dict]:
        ch = self.ws.require_channel(channel)
        return [copy.deepcopy(ch.msgs[p["ts"]]) for p in ch.pins]

    def edits(self, channel: str, ts: str) -> list[dict]:
        """Earlier versions of a message, oldest first (each chat.update / replace adds one)."""
        ch = self.ws.require_channel(channel)
        return copy.deepcopy(self.ws.edit_history.get((ch.id, ts), []))

    def ephemerals(self, user: str | None = None, channel: str | None = None) -> list[dict]:
        uid = self._user(user)["id"] if user else None
        cid = self.ws.require_channel(channel).id if channel else None
        return [copy.deepcopy(e) for e in self.ws.ephemerals
                if (uid is None or e["recipient"] == uid) and (cid is None or e["channel"] == cid)]

    def home(self, user: str) -> dict | None:
        vid = self.ws.home_views.get(self._user(user)["id"])
        return copy.deepcopy(self.ws.views[vid]) if vid else None

    def views(self, user: str) -> list[dict]:
        """The user's open modals, root first (the last one is on top)."""
        return [copy.deepcopy(self.ws.views[v]) for v in self.ws.modal_stacks.get(self._user(user)["id"], [])]

    text_of = staticmethod(text_of)

    @staticmethod
    async def wait_for(predicate: Callable[[], Any], timeout: float = 3.0, interval: float = 0.01) -> Any:
        """Poll `predicate` (sync or async) until it returns something truthy; return that value."""
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout
        while True:
            value = predicate()
            if inspect.isawaitable(value):
                value = await value
            if value:
                return value
            if loop.time() >= deadline:
                raise TimeoutError(f"condition not met within {timeout}s: {predicate}")
            await asyncio.sleep(interval)
