"""One holder at a time for a role (the board writer): a lease kept by renewing it, taken by a
waiting process once its holder stops renewing.

The holder counts itself out as soon as it cannot prove it still holds the lease (a renewal
refused, or none succeeded for `ttl_s - interval_s`), before anyone else could take over; a
waiting process tries every `interval_s`. A holder's death is so noticed within about
ttl_s + interval_s.
"""
from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable, Callable
from typing import Any

from .base import Coordinator, Lease

log = logging.getLogger(__name__)


class Leadership:
    def __init__(self, coordinator: Coordinator, key: str, *, on_gain: Callable[[Lease], Awaitable[None]],
                 on_loss: Callable[[], Awaitable[None]], ttl_s: float = 6.0, interval_s: float = 1.5,
                 take_own: bool = True):
        self.coordinator, self.key, self.take_own = coordinator, key, take_own
        self.on_gain, self.on_loss = on_gain, on_loss
        self.ttl_s, self.interval_s = ttl_s, interval_s
        self.lease: Lease | None = None
        self.gained = 0                    # how many times this process took the role
        self.closing = False               # set by close(): the loss that follows is a shutdown
        self._renewed_at = 0.0
        self._task: asyncio.Task[Any] | None = None
        self._changed = asyncio.Event()

    @property
    def holding(self) -> bool:
        return self.lease is not None

    async def start(self) -> None:
        """Take the role at once when it is free. A failing `on_gain` is raised here (a wrong
        channel should stop the process at start); later, it is logged and tried again."""
        await self._step(raise_errors=True)
        self._task = asyncio.create_task(self._run(), name=f"lease:{self.key}")

    async def close(self) -> None:
        self.closing = True
        if self._task:
            self._task.cancel()
            await asyncio.gather(self._task, return_exceptions=True)
            self._task = None
        if self.lease is not None:
            lease = self.lease
            await self._lose("shutting down")
            try:
                await self.coordinator.release(lease)   # the next holder need not wait for expiry
            except Exception as exc:
                log.info("could not release %s: %s", self.key, exc)

    async def wait_changed(self) -> None:
        self._changed.clear()
        await self._changed.wait()

    async def _run(self) -> None:
        while True:
            await asyncio.sleep(self.interval_s)
            await self._step()

    async def _step(self, raise_errors: bool = False) -> None:
        try:
            if self.lease is None:
                lease = await self.coordinator.acquire(self.key, self.ttl_s, take_own=self.take_own)
                if lease is not None:
                    self.lease, self._renewed_at = lease, time.monotonic()
                    self.gained += 1
                    log.info("%s holds %s now (token %d)", self.coordinator.name, self.key, lease.token)
                    try:
                        await self.on_gain(lease)
                    except Exception:
                        if not raise_errors:
                            log.exception("taking the %s role failed; giving it up", self.key)
                        await self._lose("its start failed")
                        await self.coordinator.release(lease)
                        if raise_errors:
                            raise
                    self._changed.set()
                return
            if await self.coordinator.renew(self.lease, self.ttl_s):
                self._renewed_at = time.monotonic()
            else:
                await self._lose("another process took it over")
        except asyncio.CancelledError:
            raise
        except Exception as exc:
            if raise_errors:
                raise
            log.warning("could not reach the database for %s: %s", self.key, exc)
        if self.lease is not None and time.monotonic() - self._renewed_at > self.ttl_s - self.interval_s:
            await self._lose("no renewal succeeded in time")

    async def _lose(self, why: str) -> None:
        if self.lease is None:
            return
        log.warning("%s gives up %s: %s", self.coordinator.name, self.key, why)
        self.lease = None
        try:
            await self.on_loss()
        except Exception:
            log.exception("stepping down from %s failed", self.key)
        self._changed.set()
