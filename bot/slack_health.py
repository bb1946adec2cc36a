"""Whether Slack's Web API answers, from the outcome of taskpin's real calls.

Every call's outcome reaches `observe` (through the clients' retry handler). A failure streak
is logged once, in one line, and so is the recovery. When no call was made for a while, a cheap
auth.test keeps the answer fresh; /healthz reads `problem` and never calls Slack itself.
"""
from __future__ import annotations

import asyncio
import logging
import time

from slack_sdk.web.async_client import AsyncWebClient

from .slack_errors import Failure, Kind, classify

log = logging.getLogger(__name__)


class SlackHealth:
    def __init__(self) -> None:
        self.problem: str | None = None   # None while the last call was answered
        self.last_call_at = 0.0           # time.monotonic() of the last outcome
        self.team_url: str | None = None  # from auth.test, for permalinks without a call
        self.failures = 0

    @property
    def ok(self) -> bool:
        return self.problem is None

    @property
    def summary(self) -> str:
        return "ok" if self.problem is None else self.problem

    def answered(self) -> None:
        self.last_call_at = time.monotonic()
        if self.problem is not None:
            log.info("Slack's Web API answers again (after %d failed call%s)", self.failures,
                     "s" if self.failures != 1 else "")
        self.problem, self.failures = None, 0

    def failed(self, exc: BaseException) -> None:
        failure = classify(exc)
        if failure is not None:
            self.observe(failure)

    def observe(self, failure: Failure | None) -> None:
        """One call's outcome: None when Slack took it."""
        if failure is None or failure.kind in (Kind.RATELIMITED, Kind.CONTENT, Kind.REFUSED):
            self.answered()      # Slack answered; at most it refused this one call
            return
        self.last_call_at = time.monotonic()
        self.failures += 1
        problem = (f"web api refuses the token: {failure.error}" if failure.kind is Kind.AUTH
                   else f"web api unreachable: {failure.reason}")
        if problem != self.problem:
            log.warning("Slack: %s; taskpin keeps what it must post and retries with backoff", problem)
        self.problem = problem

    async def watch(self, client: AsyncWebClient, *, idle_s: float, retry_s: float) -> None:
        """auth.test when no call was made for `idle_s` (every `retry_s` while Slack is failing)."""
        while True:
            wait = retry_s if self.problem else max(0.0, self.last_call_at + idle_s - time.monotonic())
            await asyncio.sleep(max(wait, 0.05))
            if self.problem or time.monotonic() - self.last_call_at >= idle_s:
                await self.probe(client)

    async def probe(self, client: AsyncWebClient) -> bool:
        try:
            response = await client.auth_test()
        except Exception as exc:   # the retry handler already recorded the outcome
            if classify(exc) is None:
                raise
            return False
        url = response.get("url")
        if isinstance(url, str) and url:
            self.team_url = url if url.endswith("/") else url + "/"
        return True
