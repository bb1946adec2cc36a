"""Pacing Slack calls before Slack has to refuse them.

Slack counts a method's calls per app; the board and the task threads share chat.update.
The board goes first: other callers spend only what leaves a reserve for its next edits.
"""
from __future__ import annotations

import asyncio
import random
import time


class TokenBucket:
    def __init__(self, rate: float, burst: int):
        self.rate, self.capacity = rate, float(burst)
        self.tokens, self.updated = float(burst), time.monotonic()

    def _refill(self) -> None:
        now = time.monotonic()
        self.tokens = min(self.capacity, self.tokens + (now - self.updated) * self.rate)
        self.updated = now

    def wait_time(self, keep: float = 0.0) -> float:
        """Seconds until a token can be taken while `keep` tokens stay in the bucket."""
        self._refill()
        need = 1 + keep - self.tokens
        return 0.0 if need <= 0 else need / self.rate

    def take(self) -> None:
        self._refill()
        self.tokens -= 1

    def pause(self, seconds: float) -> None:
        """Slack said 429: spend the budget for that long."""
        self._refill()
        self.tokens = min(self.tokens, 0) - seconds * self.rate


class MethodBudget(TokenBucket):
    """One Web API method's budget (chat.update: Tier 3, about 50 a minute)."""

    def __init__(self, per_minute: float = 50, burst: int = 20, reserve: int = 2):
        super().__init__(per_minute / 60, burst)
        self.reserve = reserve

    async def acquire_spare(self) -> None:
        """For callers other than the board: wait until a token is free beyond the reserve."""
        while (wait := self.wait_time(keep=self.reserve)) > 0:  # noqa: ASYNC110 - the bucket's computed wait for its next token, not a poll
            await asyncio.sleep(wait)
        self.take()


class Backoff:
    """Exponential backoff with a cap, and jitter so that retries after an outage do not march
    in step: base, 2*base, 4*base... up to `cap` seconds. `reset()` once a call went through."""

    def __init__(self, base: float = 1.0, cap: float = 60.0):
        self.base, self.cap = base, max(cap, base)
        self.failures = 0

    def next_delay(self) -> float:
        self.failures += 1
        delay = min(self.cap, self.base * 2 ** (self.failures - 1))
        return delay * random.uniform(0.75, 1.0)

    def reset(self) -> None:
        self.failures = 0
