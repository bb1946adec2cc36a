"""Fixtures: a running emulator, a slack_sdk client on it, a bolt app connected over Socket Mode."""
from __future__ import annotations

import pytest
from slack_bolt.adapter.socket_mode.async_handler import AsyncSocketModeHandler
from slack_bolt.async_app import AsyncApp
from slack_sdk.web.async_client import AsyncWebClient

from bot.emulator import SlackEmulator


@pytest.fixture
async def emu():
    async with SlackEmulator(rate_limits=False, ack_timeout=2.0) as e:
        yield e


@pytest.fixture
def client(emu):
    return AsyncWebClient(token=emu.bot_token, base_url=emu.api_url)


@pytest.fixture
async def socket_app(emu, client):
    """A bolt AsyncApp on the emulator over Socket Mode; add listeners, they apply immediately."""
    app = AsyncApp(client=client)
    handler = AsyncSocketModeHandler(app, emu.app_token)
    await handler.connect_async()
    await emu.wait_socket()
    yield app
    await handler.close_async()


@pytest.fixture
def modal() -> dict:
    """A modal with two input blocks (both use action_id "v", as Slack allows)."""
    return {"type": "modal", "callback_id": "new_task", "title": {"type": "plain_text", "text": "New task"},
            "submit": {"type": "plain_text", "text": "Create"},
            "blocks": [{"type": "input", "block_id": "title", "label": {"type": "plain_text", "text": "Title"},
                        "element": {"type": "plain_text_input", "action_id": "v"}},
                       {"type": "input", "block_id": "prio", "label": {"type": "plain_text", "text": "Priority"},
                        "element": {"type": "static_select", "action_id": "v", "options": [
                            {"text": {"type": "plain_text", "text": p}, "value": p} for p in ("low", "high")]}}]}
