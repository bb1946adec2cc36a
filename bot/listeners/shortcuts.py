"""The "Create agent task" message shortcut: the modal, prefilled with the message."""
from __future__ import annotations

from slack_bolt.async_app import AsyncApp

from ..blocks.text import unescape_slack
from ..ids import CallbackId
from ..services import services_of
from .commands import open_create_modal


def register(app: AsyncApp) -> None:
    app.shortcut(CallbackId.CREATE_TASK_SHORTCUT.value)(on_message_shortcut)


async def on_message_shortcut(ack, body, shortcut, context, client) -> None:
    await ack()
    prompt = unescape_slack((shortcut.get("message") or {}).get("text") or "")
    await open_create_modal(services_of(context), client, shortcut["trigger_id"], shortcut["user"]["id"],
                            prompt=prompt)
