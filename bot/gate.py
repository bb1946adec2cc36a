"""The gate every inbound Slack delivery passes before bolt sees it.

Two things are stopped here, on both transports, before bolt builds its listener arguments
(which index `body["actions"][0]` and the like, so a malformed payload would crash there):

- payloads not shaped like Slack's (listeners/guard.py): acked, logged in one line, dropped;
- redeliveries: Slack delivers again what it thinks was not acked (Socket Mode redelivery,
  Events API retries with X-Slack-Retry-Num). Each delivery's key is claimed in the store
  (insert-if-absent), so the same thing has one effect, across restarts and processes.

The key per kind is the id that stays the same when Slack delivers the same thing again:

- Events API: ``event:<event_id>`` (the same on every HTTP retry and Socket Mode redelivery);
- slash commands, block actions, view submissions, shortcuts: ``trigger:<trigger_id>``; Slack
  mints one per user gesture, and a redelivered envelope carries the same payload;
- anything else (view_closed, events without an id): ``envelope:<envelope_id>`` in Socket
  Mode (a redelivered envelope keeps its id); over HTTP such a delivery is not deduplicated.
"""
from __future__ import annotations

import logging
import re
from typing import Any

from aiohttp import web
from slack_bolt.adapter.socket_mode.async_handler import AsyncSocketModeHandler
from slack_sdk.signature import SignatureVerifier
from slack_sdk.socket_mode.request import SocketModeRequest
from slack_sdk.socket_mode.response import SocketModeResponse

from orchestrator import Orchestrator

from .listeners.guard import problem_with

log = logging.getLogger(__name__)
_TIMESTAMP = re.compile(r"[0-9]{1,12}")


def delivery_key(body: dict[str, Any], envelope_id: str | None = None) -> str | None:
    """The dedupe key of a (well-formed) delivery; None when it has none."""
    if body.get("type") == "event_callback" and isinstance(body.get("event_id"), str) and body["event_id"]:
        return f"event:{body['event_id']}"
    trigger = body.get("trigger_id")
    if isinstance(trigger, str) and trigger and body.get("type") != "event_callback":
        return f"trigger:{trigger}"
    return f"envelope:{envelope_id}" if envelope_id else None


class Gate:
    def __init__(self, core: Orchestrator, signing_secret: str | None = None):
        self.core = core
        self.verifier = SignatureVerifier(signing_secret) if signing_secret else None
        self.refused = 0      # malformed deliveries dropped
        self.duplicates = 0   # redeliveries dropped

    async def admit(self, body: Any, *, envelope_id: str | None = None) -> bool:
        """True when the delivery should reach the listeners (the caller acks it otherwise)."""
        try:
            problem = problem_with(body)
        except Exception as exc:   # a shape the guard did not foresee is still not Slack's
            problem = f"unreadable payload: {type(exc).__name__}"
        if problem:
            self.refused += 1
            log.warning("refused a delivery that Slack would not send (%s)", problem)
            return False
        key = delivery_key(body, envelope_id)
        if key is None:
            return True
        try:
            first = await self.core.claim_delivery(key)
        except Exception as exc:   # the store is down: better twice than never
            log.warning("could not record delivery %s (%s); handling it anyway", key, exc)
            return True
        if not first:
            self.duplicates += 1
            log.info("dropped a redelivery (%s)", key)
        return first

    def unsigned(self, request: web.Request, raw_body: str) -> bool:
        """HTTP mode: a request without a valid, fresh signature. Checked here (bolt checks again)
        because a non-numeric timestamp makes the signature check itself raise."""
        timestamp = request.headers.get("X-Slack-Request-Timestamp", "")
        if not _TIMESTAMP.fullmatch(timestamp) or self.verifier is None:
            return True
        return not self.verifier.is_valid(raw_body, timestamp, request.headers.get("X-Slack-Signature"))


class GatedSocketModeHandler(AsyncSocketModeHandler):
    """bolt's Socket Mode handler, with every envelope passing the gate first."""

    def __init__(self, app, app_token: str, gate: Gate, **options):
        super().__init__(app, app_token, **options)
        self.gate = gate

    async def handle(self, client, req: SocketModeRequest) -> None:
        if not await self.gate.admit(req.payload, envelope_id=req.envelope_id):
            await client.send_socket_mode_response(SocketModeResponse(envelope_id=req.envelope_id))
            return
        await super().handle(client, req)
