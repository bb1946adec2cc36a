"""HTTP mode: signed POSTs to the app's Request URL, encoded exactly as Slack sends them."""
from __future__ import annotations

import hashlib
import hmac
import json
import time
from urllib.parse import urlencode

import aiohttp


def sign(secret: str, timestamp: str, body: str) -> str:
    base = f"v0:{timestamp}:{body}".encode()
    return "v0=" + hmac.new(secret.encode(), base, hashlib.sha256).hexdigest()


def encode(kind: str, payload: dict) -> tuple[str, str]:
    """(body, content type) for a delivery type."""
    if kind == "events_api":
        return json.dumps(payload), "application/json"
    if kind == "slash_commands":
        return urlencode(payload), "application/x-www-form-urlencoded"
    return urlencode({"payload": json.dumps(payload)}), "application/x-www-form-urlencoded"


class HttpDeliverer:
    """`signature`: "valid", "bad" (wrong secret) or "stale" (correctly signed, 10 minutes old)."""

    def __init__(self, signing_secret: str) -> None:
        self.signing_secret = signing_secret
        self.url: str | None = None
        self.signature = "valid"
        self._session: aiohttp.ClientSession | None = None

    async def post(self, kind: str, payload: dict, retry_attempt: int, retry_reason: str,
                   timeout: float) -> tuple[int, str, str]:
        """POST one delivery; return (status, body, content type). Raises asyncio.TimeoutError."""
        assert self.url, "no Request URL: call emu.set_request_url(url)"
        body, ctype = encode(kind, payload)
        ts = str(int(time.time()) - (600 if self.signature == "stale" else 0))
        secret = self.signing_secret + ("-forged" if self.signature == "bad" else "")
        headers = {"Content-Type": ctype, "X-Slack-Request-Timestamp": ts,
                   "X-Slack-Signature": sign(secret, ts, body), "User-Agent": "Slackbot 1.0 (+https://api.slack.com/robots)"}
        if retry_attempt:
            headers["X-Slack-Retry-Num"] = str(retry_attempt)
            headers["X-Slack-Retry-Reason"] = retry_reason or "http_timeout"
        if self._session is None or self._session.closed:
            self._session = aiohttp.ClientSession()
        async with self._session.post(self.url, data=body.encode(), headers=headers,
                                      timeout=aiohttp.ClientTimeout(total=timeout)) as resp:
            return resp.status, await resp.text(), resp.headers.get("Content-Type", "")

    async def close(self) -> None:
        if self._session is not None:
            await self._session.close()
            self._session = None
