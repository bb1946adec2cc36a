"""A local Slack emulator (aiohttp on 127.0.0.1) for taskpin's tests, benchmarks and offline demo.

    async with SlackEmulator() as emu:
        client = AsyncWebClient(token=emu.bot_token, base_url=emu.api_url)
        app = AsyncApp(client=client)
        ...  # AsyncSocketModeHandler(app, emu.app_token), or emu.set_request_url(...) for HTTP mode
        ack = await emu.slash_command("U_OWNER", "/task", "new fix the build")
"""
from .blockkit import text_of, validate_blocks, validate_view
from .delivery import Ack, Delivery, NotAcked
from .ratelimit import DEFAULT_LIMITS, POST_MESSAGE, TIER1, TIER2, TIER3, TIER4, Limit
from .server import SlackEmulator
from .webapi import CallRecord

__all__ = [
    "SlackEmulator", "Ack", "Delivery", "NotAcked", "CallRecord", "Limit", "DEFAULT_LIMITS",
    "TIER1", "TIER2", "TIER3", "TIER4", "POST_MESSAGE", "text_of", "validate_blocks", "validate_view",
]
