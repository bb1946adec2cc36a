"""Slack-like rate limiting: token buckets per (method, token[, channel]) plus forced 429 storms."""
from __future__ import annotations

import fnmatch
import math
import time
from dataclasses import dataclass


@dataclass(frozen=True)
class Limit:
    """`rate` calls per `per` seconds, with a bucket of `burst` calls (default: `rate`)."""

    rate: float
    per: float = 60.0
    burst: float | None = None
    per_channel: bool = False

    @property
    def capacity(self) -> float:
        return self.burst if self.burst is not None else self.rate


TIER1, TIER2, TIER3, TIER4 = Limit(1), Limit(20), Limit(50), Limit(100)
POST_MESSAGE = Limit(1, 1.0, burst=3, per_channel=True)

DEFAULT_LIMITS: dict[str, Limit] = {
    "pins.*": TIER2,
    "chat.update": TIER3, "chat.delete": TIER3, "conversations.replies": TIER3,
    "conversations.history": TIER3, "conversations.open": TIER3, "apps.connections.open": TIER3, "chat.getPermalink": TIER4,
    "chat.postEphemeral": TIER4, "views.*": TIER4, "users.info": TIER4,
    "chat.postMessage": POST_MESSAGE,
}


def _as_limit(v: Limit | tuple) -> Limit:
    return v if isinstance(v, Limit) else Limit(*v)


class _Bucket:
    def __init__(self, limit: Limit, now: float) -> None:
        self.limit = limit
        self.tokens = limit.capacity
        self.stamp = now

    def take(self, now: float) -> float | None:
        """Take one token; return None, or the seconds until one is available."""
        refill = self.limit.rate / self.limit.per
        self.tokens = min(self.limit.capacity, self.tokens + (now - self.stamp) * refill)
        self.stamp = now
        if self.tokens >= 1:
            self.tokens -= 1
            return None
        return (1 - self.tokens) / refill


class RateLimiter:
    """`table`: method name or glob ("pins.*") -> Limit or (rate, per[, burst, per_channel])."""

    def __init__(self, table: dict | bool | None = True) -> None:
        if table is True:
            table = DEFAULT_LIMITS
        self.table = {k: _as_limit(v) for k, v in (table or {}).items()}
        self.buckets: dict[tuple, _Bucket] = {}
        self.storms: dict[str, tuple[float, int]] = {}   # method or "*" -> (until, retry_after)

    def limit_for(self, method: str) -> Limit | None:
        if method in self.table:
            return self.table[method]
        return next((v for k, v in self.table.items() if fnmatch.fnmatchcase(method, k)), None)

    def force(self, method: str, seconds: float, retry_after: int = 1) -> None:
        self.storms[method] = (time.monotonic() + seconds, retry_after)

    def check(self, method: str, token: str, channel: str | None = None) -> int | None:
        """Return None if allowed, or the Retry-After seconds for a 429."""
        now = time.monotonic()
        for key in (method, "*"):
            until, retry_after = self.storms.get(key, (0.0, 0))
            if now < until:
                return retry_after
        limit = self.limit_for(method)
        if limit is None:
            return None
        bucket_key = (method, token, channel if limit.per_channel else None)
        bucket = self.buckets.get(bucket_key)
        if bucket is None:
            bucket = self.buckets[bucket_key] = _Bucket(limit, now)
        wait = bucket.take(now)
        return None if wait is None else max(1, math.ceil(wait))
