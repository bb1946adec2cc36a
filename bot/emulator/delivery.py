"""Deliveries to the app (Socket Mode or HTTP) and the acks that come back."""
from __future__ import annotations

import asyncio
import json
import time
import uuid
from dataclasses import dataclass, field

from .http_delivery import HttpDeliverer
from .socket_mode import SocketModeHub

ACCEPTS_RESPONSE = {"slash_commands": True, "events_api": False}


class NotAcked(AssertionError):
    """The app did not ack a user action in time (Slack would show the user an error)."""


@dataclass
class Delivery:
    id: str                      # envelope_id in Socket Mode
    type: str                    # events_api | slash_commands | interactive
    payload: dict
    mode: str                    # "socket" | "http"
    retry_attempt: int = 0
    retry_reason: str = ""
    sent_at: float = 0.0         # time.monotonic()
    ack: "Ack | None" = None

    @property
    def kind(self) -> str:
        """Finer type: the event type, the interactive payload type, or "slash_command"."""
        if self.type == "events_api":   # hostile payloads may carry anything in these fields
            event = self.payload.get("event")
            return str(event.get("type", "event")) if isinstance(event, dict) else "event"
        return str(self.payload.get("type", "slash_command")) if self.type == "interactive" else "slash_command"


@dataclass
class Ack:
    delivery: Delivery
    acked: bool
    latency: float | None = None          # seconds from send to ack
    payload: dict | None = None           # response payload (Socket Mode) / parsed body (HTTP)
    http_status: int | None = None        # HTTP mode only
    errors: dict | None = None            # view_submission `response_action: errors`
    message: dict | None = None           # the message a user_message() call posted
    extra: dict = field(default_factory=dict)

    @property
    def response_action(self) -> str | None:
        return (self.payload or {}).get("response_action")


class Dispatcher:
    """Sends deliveries over the active transport: HTTP when a Request URL is set, else Socket Mode."""

    def __init__(self, signing_secret: str) -> None:
        self.socket = SocketModeHub()
        self.http = HttpDeliverer(signing_secret)
        self.deliveries: list[Delivery] = []

    @property
    def mode(self) -> str:
        return "http" if self.http.url else "socket"

    def can_deliver(self) -> bool:
        return bool(self.http.url or self.socket.live)

    async def deliver(self, kind: str, payload: dict, *, timeout: float, retry_attempt: int = 0,
                      retry_reason: str = "", envelope_id: str | None = None, connection: int | None = None) -> Ack:
        """`envelope_id`: a redelivery keeps the first delivery's (as Slack's Socket Mode does).
        `connection`: the number of the live Socket Mode connection to use (default: the newest)."""
        d = Delivery(envelope_id or uuid.uuid4().hex, kind, payload, self.mode, retry_attempt, retry_reason)
        self.deliveries.append(d)
        d.ack = await (self._http(d, timeout) if d.mode == "http" else self._socket(d, timeout, connection))
        return d.ack

    async def _socket(self, d: Delivery, timeout: float, connection: int | None = None) -> Ack:
        envelope = {"envelope_id": d.id, "type": d.type, "payload": d.payload,
                    "accepts_response_payload": ACCEPTS_RESPONSE.get(d.type, d.kind == "view_submission"),
                    "retry_attempt": d.retry_attempt, "retry_reason": d.retry_reason}
        try:
            fut = await self.socket.send(envelope, timeout, connection)
        except TimeoutError:
            return Ack(d, acked=False, extra={"error": "no Socket Mode connection (is the app running?)"})
        d.sent_at = time.monotonic()
        try:
            msg = await asyncio.wait_for(fut, timeout)
        except TimeoutError:
            self.socket.pending.pop(d.id, None)
            return Ack(d, acked=False)
        return Ack(d, True, msg["_received"] - d.sent_at, msg.get("payload"))

    async def _http(self, d: Delivery, timeout: float) -> Ack:
        d.sent_at = time.monotonic()
        try:
            status, body, ctype = await self.http.post(d.type, d.payload, d.retry_attempt,
                                                       d.retry_reason, timeout)
        except (TimeoutError, OSError) as e:
            return Ack(d, acked=False, extra={"error": f"{type(e).__name__}: {e}"})
        latency = time.monotonic() - d.sent_at
        payload = None
        if body:
            try:
                payload = json.loads(body) if "json" in ctype or body.startswith("{") else {"text": body}
            except ValueError:
                payload = {"text": body}
        return Ack(d, status == 200, latency, payload if status == 200 else None, status,
                   extra={} if status == 200 else {"body": body})

    async def close(self) -> None:
        await self.socket.close_all()
        await self.http.close()
