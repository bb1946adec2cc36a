"""slack_sdk Web API clients with taskpin's retry policy, through slack_sdk's retry-handler API.

Retried inside the client, a few times with exponential backoff: any 5xx (500, 502, 503, 504...,
with JSON, HTML or plain-text bodies), timeouts, refused or reset connections. chat.postMessage
is the exception: when the message may have been posted (a 5xx, a timeout, a reset), the client
does not resend it blindly; the outbox does, after looking for the message's marker, so a retry
never posts a message twice. The handler also reports every call's outcome to SlackHealth.
"""
from __future__ import annotations

import aiohttp
from slack_sdk.http_retry.async_handler import AsyncRetryHandler
from slack_sdk.http_retry.builtin_async_handlers import AsyncRateLimitErrorRetryHandler
from slack_sdk.http_retry.builtin_interval_calculators import (
    BackoffRetryIntervalCalculator,
)
from slack_sdk.http_retry.request import HttpRequest
from slack_sdk.http_retry.response import HttpResponse
from slack_sdk.http_retry.state import RetryState
from slack_sdk.web.async_client import AsyncWebClient

from .slack_errors import Kind, classify, classify_answer
from .slack_health import SlackHealth

NOT_IDEMPOTENT = frozenset({"chat.postMessage"})


class TransientErrorRetryHandler(AsyncRetryHandler):
    def __init__(self, *, max_retry_count: int = 2, backoff_s: float = 0.5, health: SlackHealth | None = None):
        super().__init__(max_retry_count, BackoffRetryIntervalCalculator(backoff_factor=backoff_s))
        self.health = health

    async def can_retry_async(self, *, state: RetryState, request: HttpRequest,
                              response: HttpResponse | None = None, error: Exception | None = None) -> bool:
        failure = self._failure(response, error)
        if self.health is not None and (failure is None or failure.kind is not Kind.RATELIMITED):
            self.health.observe(failure)
        return await super().can_retry_async(state=state, request=request, response=response, error=error)

    async def _can_retry_async(self, *, state: RetryState, request: HttpRequest,
                               response: HttpResponse | None = None, error: Exception | None = None) -> bool:
        failure = self._failure(response, error)
        if failure is None or failure.kind is not Kind.UNREACHABLE:
            return False
        method = request.url.rstrip("/").rsplit("/", 1)[-1]
        return not failure.ambiguous or method not in NOT_IDEMPOTENT

    @staticmethod
    def _failure(response: HttpResponse | None, error: Exception | None):
        if error is not None:
            return classify(error)
        if response is None:
            return None
        data = response.body if response.body is not None else response.data
        return classify_answer(response.status_code, data)


def http_session(timeout_s: float) -> aiohttp.ClientSession:
    """One connection pool for a process's Slack calls (slack_sdk opens a new session, and a new
    connection, for every call made without one). The caller closes it."""
    return aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=timeout_s))


def make_client(token: str, base_url: str, *, health: SlackHealth | None = None, retry_rate_limits: bool = False,
                timeout_s: float = 30.0, backoff_s: float = 0.5,
                session: aiohttp.ClientSession | None = None) -> AsyncWebClient:
    """A client that retries Slack's transient failures. The paced senders (board, poster) handle
    429 themselves (`retry_rate_limits=False`), so that a retry sends fresh state. With `session`
    (see `http_session`), calls reuse its connections instead of opening one per call."""
    client = AsyncWebClient(token=token, base_url=base_url, timeout=timeout_s,  # type: ignore[arg-type]
                            session=session)
    client.retry_handlers.clear()    # the default connection-error handler is replaced by ours
    client.retry_handlers.append(TransientErrorRetryHandler(health=health, backoff_s=backoff_s))
    if retry_rate_limits:
        client.retry_handlers.append(AsyncRateLimitErrorRetryHandler(max_retry_count=5))
    return client
