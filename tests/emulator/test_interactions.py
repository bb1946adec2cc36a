"""Modal stacks, shortcuts, selects, ephemeral buttons, response_url, raw form-encoded calls."""
from __future__ import annotations

import aiohttp
import pytest

from bot.emulator import text_of, validate_blocks, validate_view


def button(action_id: str, label: str = "Go", value: str | None = None) -> dict:
    b = {"type": "button", "text": {"type": "plain_text", "text": label}, "action_id": action_id}
    return {**b, "value": value} if value else b


async def test_push_update_and_clear_modals(emu, socket_app, client, modal):
    @socket_app.shortcut("new_task")
    async def shortcut(ack, body):
        await ack()
        await client.views_open(trigger_id=body["trigger_id"], view={
            **modal, "callback_id": "step1", "blocks": [
                {"type": "actions", "elements": [button("more")]}, *modal["blocks"]]})

    @socket_app.action("more")
    async def more(ack, body):
        await ack()
        await client.views_push(trigger_id=body["trigger_id"], view={**modal, "callback_id": "step2"})

    @socket_app.view("step2")
    async def step2(ack):
        await ack(response_action="update", view={**modal, "callback_id": "step3",
                                                  "title": {"type": "plain_text", "text": "Confirm"}})

    @socket_app.view("step3")
    async def step3(ack):
        await ack(response_action="clear")

    await emu.global_shortcut("carol", "new_task")
    root = (await emu.wait_for(lambda: emu.views("carol")))[0]
    await emu.click_view_button("carol", root["id"], "more")
    top = (await emu.wait_for(lambda: emu.views("carol")[1:]))[0]
    assert top["previous_view_id"] == root["id"] and top["root_view_id"] == root["id"]
    await emu.submit_view("carol", top["id"], {"title": "x", "prio": "low"})
    assert emu.views("carol")[1]["title"]["text"] == "Confirm"
    with pytest.raises(AssertionError, match="required input"):
        await emu.submit_view("carol", top["id"], {"prio": "low"})
    await emu.submit_view("carol", top["id"], {"title": "x", "prio": "low"})
    assert emu.views("carol") == []


async def test_message_shortcut_select_and_ephemeral_button(emu, socket_app, client):
    got = []

    @socket_app.shortcut("summarize")
    async def summarize(ack, shortcut, respond):
        await ack()
        got.append(shortcut["message"]["text"])
        await client.chat_postEphemeral(channel="C_BOARD", user=shortcut["user"]["id"], text="confirm?",
                                        blocks=[{"type": "actions", "elements": [button("yes")]}])

    @socket_app.action("yes")
    async def yes(ack, body, respond):
        await ack()
        got.append(body["container"]["is_ephemeral"])
        await respond(delete_original=True)

    @socket_app.action("prio")
    async def prio(ack, action):
        await ack()
        got.append(action["selected_option"]["value"])

    msg = await emu.user_message("alice", "C_BOARD", "please summarize", expect_ack=False, timeout=0.2)
    await emu.message_shortcut("alice", "C_BOARD", msg.message["ts"], "summarize")
    eph = (await emu.wait_for(lambda: emu.ephemerals("alice")))[0]
    with pytest.raises(AssertionError):
        await emu.click_button("bob", "C_BOARD", eph["ts"], "yes")     # bob cannot see it
    await emu.click_button("alice", "C_BOARD", eph["ts"], "yes")
    await emu.wait_for(lambda: emu.ephemerals("alice") == [])

    select = {"type": "static_select", "action_id": "prio", "options": [
        {"text": {"type": "plain_text", "text": p}, "value": p} for p in ("low", "high")]}
    card = await client.chat_postMessage(channel="C_BOARD", text="card",
                                         blocks=[{"type": "section", "text": {"type": "mrkdwn", "text": "T-1"},
                                                  "accessory": select}])
    await emu.select_option("bob", "C_BOARD", card["ts"], "prio", "high")
    assert got == ["please summarize", True, "high"]


async def test_form_encoded_calls_and_token_param(emu):
    async with aiohttp.ClientSession() as http:
        blocks = '[{"type":"section","text":{"type":"mrkdwn","text":"*form*"}}]'
        r = await http.post(emu.api_url + "chat.postMessage",
                            data={"token": emu.bot_token, "channel": "C_BOARD", "text": "f", "blocks": blocks})
        body = await r.json()
        assert body["ok"] and text_of(emu.message("C_BOARD", body["ts"])) == "*form*"
        r = await http.get(emu.api_url + "conversations.history", params={"channel": "C_BOARD"},
                           headers={"Authorization": f"Bearer {emu.bot_token}"})
        assert [m["text"] for m in (await r.json())["messages"]] == ["f"]
        r = await http.post(emu.api_url + "chat.nope", data={"token": emu.bot_token})
        assert (await r.json())["error"] == "unknown_method"


def test_view_and_block_limits(modal):
    base = {"type": "modal", "title": {"type": "plain_text", "text": "ok"}}
    section = {"type": "section", "text": {"type": "mrkdwn", "text": "x"}}
    assert validate_view({**base, "blocks": [section] * 100}) == []
    assert validate_view({**base, "blocks": [section] * 101})
    assert validate_view({**base, "blocks": [], "private_metadata": "m" * 3001})
    assert validate_view({**base, "blocks": [], "callback_id": "c" * 256})
    assert validate_view({**base, "blocks": [], "close": {"type": "plain_text", "text": "c" * 25}})
    assert validate_view(modal) == []            # the same action_id in two input blocks is fine
    dup = [{"type": "actions", "elements": [button("a"), button("a")]}]
    assert "duplicate action_id" in validate_view({**base, "blocks": dup})[0]
    assert validate_blocks([{**section, "block_id": "b"}, {**section, "block_id": "b"}])
    assert validate_blocks([{"type": "actions", "elements": [button(f"b{i}") for i in range(26)]}])
    assert validate_blocks([{"type": "context", "elements": [{"type": "mrkdwn", "text": "c"}] * 11}])
    assert validate_blocks([{"type": "section", "fields": [{"type": "mrkdwn", "text": "f" * 2001}]}])
    long_value = {**button("v"), "value": "v" * 2001}
    assert validate_blocks([{"type": "actions", "elements": [long_value]}])
    assert validate_blocks([{"type": "actions", "elements": [{**button("u"), "url": "u" * 3001}]}])
    assert validate_blocks([{"type": "actions", "elements": [button("x" * 256)]}])
    assert validate_blocks([{"type": "section", "text": {"type": "html", "text": "x"}}])
