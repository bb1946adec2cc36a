"""Pacing Slack calls before Slack has to refuse them.

Slack counts a method's calls per app; the board and the task threads share chat.update.
The board goes first: other callers spend only what leaves a reserve for its next edits.
"""
from __future__ import annotations

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
    """One Web API method's budget (chat.update: Tier 3, about 50 a minute), shared by the board
    and the poster's edits of thread messages and DMs.

    The board goes first: other callers spend only what leaves `reserve` tokens for its next
    edits. Among the others, the next token goes to the most urgent caller waiting (then to the
    one waiting longest), so an owner's DM saying how many questions wait does not lose the race
    for each token to a channel with many output edits queued.
    """

    def __init__(self, per_minute: float = 50, burst: int = 20, reserve: int = 2):
        super().__init__(per_minute / 60, burst)
        self.reserve = reserve
        self._waiting: dict[object, tuple[int, float]] = {}    # caller -> (urgency rank, waiting since)

    def wait_for(self, caller: object = None, rank: int = 0) -> float:
        """Seconds until `caller` may take a token (None: the board); a lower `rank` is more urgent."""
        if caller is None:
            return self.wait_time()
        mine = self._waiting.get(caller, (rank, time.monotonic()))
        mine = min(mine, (rank, mine[1]))
        ahead = sum(1 for other, theirs in self._waiting.items() if other != caller and theirs < mine)
        return self.wait_time(keep=self.reserve + ahead)

    def queue(self, caller: object, rank: int = 0) -> None:
        """`caller` waits for a token: from now on it holds its place in line."""
        held_rank, since = self._waiting.get(caller, (rank, time.monotonic()))
        self._waiting[caller] = (min(held_rank, rank), since)

    def withdraw(self, caller: object) -> None:
        self._waiting.pop(caller, None)

    def take(self, caller: object = None) -> None:
        super().take()
        self.withdraw(caller)


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
