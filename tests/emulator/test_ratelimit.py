"""Rate limits answered like Slack: 429, Retry-After, {"ok": false, "error": "ratelimited"}."""
from __future__ import annotations

import asyncio

import pytest
from slack_sdk.errors import SlackApiError
from slack_sdk.http_retry.builtin_async_handlers import AsyncRateLimitErrorRetryHandler
from slack_sdk.web.async_client import AsyncWebClient

from bot.emulator import DEFAULT_LIMITS, Limit, SlackEmulator


async def test_hammering_chat_update_beyond_tier3_gets_429():
    async with SlackEmulator() as emu:
        client = AsyncWebClient(token=emu.bot_token, base_url=emu.api_url)
        ts = (await client.chat_postMessage(channel="C_BOARD", text="board"))["ts"]
        ok = 0
        while True:                               # Tier 3: a burst of ~50 passes, then 429
            try:
                await client.chat_update(channel="C_BOARD", ts=ts, text=f"v{ok}")
                ok += 1
            except SlackApiError as e:
                resp = e.response
                break
            assert ok <= 55
        assert ok >= 50 and resp.status_code == 429 and resp.data == {"ok": False, "error": "ratelimited"}
        assert int(resp.headers["Retry-After"]) >= 1
        assert emu.ratelimited_count("chat.update") == 1 and emu.count("chat.update", ok=True) == ok
        assert emu.message("C_BOARD", ts)["text"] == f"v{ok - 1}"


async def test_post_message_is_paced_per_channel():
    async with SlackEmulator() as emu:
        client = AsyncWebClient(token=emu.bot_token, base_url=emu.api_url)
        emu.add_channel("C_OTHER", "other")
        with pytest.raises(SlackApiError):
            for _ in range(6):                    # 1/s per channel with a burst of 3
                await client.chat_postMessage(channel="C_BOARD", text="x")
        assert 3 <= emu.count("chat.postMessage", ok=True) < 6
        await client.chat_postMessage(channel="C_OTHER", text="other channel has its own bucket")


async def test_retry_handler_recovers_with_custom_table():
    table = {**DEFAULT_LIMITS, "chat.update": Limit(2, 2.0)}   # 2 per 2 s -> Retry-After: 1
    async with SlackEmulator(rate_limits=table) as emu:
        client = AsyncWebClient(token=emu.bot_token, base_url=emu.api_url,
                                retry_handlers=[AsyncRateLimitErrorRetryHandler(max_retry_count=2)])
        ts = (await client.chat_postMessage(channel="C_BOARD", text="board"))["ts"]
        for i in range(4):
            await client.chat_update(channel="C_BOARD", ts=ts, text=f"v{i}")
        assert emu.ratelimited_count("chat.update") >= 1        # each 429 was retried and recovered
        assert emu.message("C_BOARD", ts)["text"] == "v3"


async def test_forced_429_storm():
    async with SlackEmulator(rate_limits=False) as emu:
        client = AsyncWebClient(token=emu.bot_token, base_url=emu.api_url)
        emu.force_rate_limit("chat.postMessage", seconds=0.5, retry_after=3)
        for _ in range(5):
            with pytest.raises(SlackApiError) as info:
                await client.chat_postMessage(channel="C_BOARD", text="x")
            assert info.value.response.headers["Retry-After"] == "3"
        assert emu.ratelimited_count() == 5
        await client.auth_test()                   # other methods are unaffected
        await asyncio.sleep(0.5)
        await client.chat_postMessage(channel="C_BOARD", text="after the storm")
        assert [m["text"] for m in emu.messages("C_BOARD")] == ["after the storm"]
