"""HTTP mode: signed deliveries to a bolt AsyncApp served by aiohttp on 127.0.0.1."""
from __future__ import annotations

import pytest
from aiohttp import web
from slack_bolt.async_app import AsyncApp

from bot.emulator import NotAcked


@pytest.fixture
async def http_app(emu, client):
    app = AsyncApp(client=client, signing_secret=emu.signing_secret)
    runner = web.AppRunner(app.web_app(path="/slack/events"))
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    port = site._server.sockets[0].getsockname()[1]
    emu.set_request_url(f"http://127.0.0.1:{port}/slack/events")
    yield app
    await runner.cleanup()


async def test_signed_deliveries_are_accepted(emu, http_app, client):
    events = []

    @http_app.command("/task")
    async def task(ack, command):
        await ack(text=f"ok {command['text']}", response_type="in_channel")

    @http_app.action("go")
    async def go(ack, body):
        await ack()
        events.append(body["actions"][0]["action_id"])

    @http_app.event("message")
    async def message(event, ack):
        events.append(event["text"])

    ack = await emu.slash_command("alice", "/task", "list")
    assert ack.http_status == 200 and ack.delivery.mode == "http"
    assert emu.messages("C_BOARD")[0]["text"] == "ok list"       # in_channel ack -> a channel message

    posted = await client.chat_postMessage(channel="C_BOARD", text="card", blocks=[{"type": "actions", "elements": [
        {"type": "button", "text": {"type": "plain_text", "text": "Go"}, "action_id": "go"}]}])
    await emu.click_button("bob", "C_BOARD", posted["ts"], "go")
    first = await emu.user_message("bob", "C_BOARD", "hi there")
    retry = await emu.redeliver(first)
    assert retry.http_status == 200 and retry.delivery.retry_reason == "http_timeout"
    assert events == ["go", "hi there", "hi there"]
    assert (await emu.url_verification("abc")).payload == {"challenge": "abc"}


@pytest.mark.parametrize("signature", ["bad", "stale"])
async def test_forged_or_stale_signature_gets_401(emu, http_app, signature):
    @http_app.command("/task")
    async def task(ack):
        await ack()

    emu.set_request_url(emu.dispatcher.http.url, signature=signature)
    with pytest.raises(NotAcked, match="HTTP 401"):
        await emu.slash_command("alice", "/task")
    ack = await emu.slash_command("alice", "/task", expect_ack=False)
    assert not ack.acked and ack.http_status == 401
