"""Registered last: anything no other listener took is acked and dropped.

bolt answers an unmatched request with 404 and no ack, so Slack shows the user an error and
retries events (and may pause the subscription). Unknown buttons, views, shortcuts, commands
and event types are not ours to act on, but they are ours to ack.
"""
from __future__ import annotations

import logging
import re

from slack_bolt.async_app import AsyncApp

log = logging.getLogger(__name__)
ANYTHING = re.compile(r".*", re.DOTALL)


def register(app: AsyncApp) -> None:
    app.action(ANYTHING)(ack_unknown)
    app.view(ANYTHING)(ack_unknown)
    app.shortcut(ANYTHING)(ack_unknown)
    app.command(ANYTHING)(ack_unknown)
    app.options(ANYTHING)(ack_unknown)
    app.event(ANYTHING)(ack_event)


async def ack_unknown(ack, body) -> None:
    await ack()
    log.info("acked a %s taskpin has no handler for", body.get("type") or "command")


async def ack_event(body) -> None:
    """bolt acks events itself once a listener matched."""
