"""A real bolt AsyncApp over Socket Mode (aiohttp client) driven by the emulator."""
from __future__ import annotations

import pytest

from bot.emulator import NotAcked

BUTTONS = [{"type": "actions", "block_id": "card", "elements": [
    {"type": "button", "text": {"type": "plain_text", "text": "Approve"}, "action_id": "approve",
     "value": "T-1", "style": "primary"}]}]


async def test_slash_command_and_button(emu, socket_app, client):
    clicked = []

    @socket_app.command("/task")
    async def task(ack, command, respond):
        await ack(f"queued: {command['text']}")
        await client.chat_postMessage(channel=command["channel_id"], text="card", blocks=BUTTONS)

    @socket_app.action("approve")
    async def approve(ack, body, respond):
        await ack()
        clicked.append((body["user"]["id"], body["actions"][0]["value"]))
        await respond(text="approved", replace_original=True)

    ack = await emu.slash_command("alice", "/task", "fix the build")
    assert ack.acked and ack.delivery.mode == "socket" and 0 <= ack.latency < 2
    assert ack.payload == {"text": "queued: fix the build"}
    assert [e["text"] for e in emu.ephemerals("alice")] == ["queued: fix the build"]

    card = (await emu.wait_for(lambda: emu.messages("C_BOARD")))[0]
    await emu.click_button("U_OWNER", "C_BOARD", card["ts"], "approve")
    await emu.wait_for(lambda: emu.message("C_BOARD", card["ts"])["text"] == "approved")
    assert clicked == [("U_OWNER", "T-1")]
    assert emu.response_url_posts[0]["body"]["replace_original"] is True
    with pytest.raises(AssertionError, match="no button"):
        await emu.click_button("U_OWNER", "C_BOARD", card["ts"], "approve")   # replaced: gone
    # the bot's own message reached the app as a message event with bot_id (bolt drops it)
    bot_events = [d for d in emu.deliveries if d.kind == "message"]
    assert bot_events and bot_events[0].payload["event"]["bot_id"] == "B_TASKPIN"


async def test_unhandled_command_is_not_acked(emu, socket_app):
    with pytest.raises(NotAcked):
        await emu.slash_command("alice", "/nobody-listens", timeout=0.3)


async def test_redelivery_carries_retry_attempt(emu, socket_app):
    seen = []

    @socket_app.event("message")
    async def on_message(event, body, ack, context):
        seen.append((body["event_id"], event["text"], event.get("thread_ts"), event.get("parent_user_id")))

    first = await emu.user_message("bob", "C_BOARD", "hello")
    retry = await emu.redeliver(first)
    assert retry.delivery.retry_attempt == 1 and retry.delivery.retry_reason == "timeout"
    await emu.user_message("bob", "C_BOARD", "in thread", thread_ts=first.message["ts"])
    await emu.wait_for(lambda: len(seen) == 3)
    assert seen[0] == seen[1] == (first.delivery.payload["event_id"], "hello", None, None)
    assert seen[2][1:] == ("in thread", first.message["ts"], "U_OTHER")


async def test_modal_submission_with_errors_then_success(emu, socket_app, client, modal):
    @socket_app.command("/task")
    async def task(ack, body):
        await ack()
        await client.views_open(trigger_id=body["trigger_id"], view=modal)

    @socket_app.view("new_task")
    async def submitted(ack, view):
        values = view["state"]["values"]
        if len(values["title"]["v"]["value"]) < 3:
            await ack(response_action="errors", errors={"title": "too short"})
        else:
            await ack()
            await client.chat_postMessage(channel="C_BOARD", text=values["title"]["v"]["value"]
                                          + " / " + values["prio"]["v"]["selected_option"]["value"])

    await emu.slash_command("alice", "/task")
    view = (await emu.wait_for(lambda: emu.views("alice")))[0]
    bad = await emu.submit_view("alice", view["id"], {"title": "ab", "prio": "high"})
    assert bad.errors == {"title": "too short"} and emu.views("alice")
    ok = await emu.submit_view("alice", view["id"], {"title": {"v": "Fix CI"}, "prio": {"v": "low"}})
    assert ok.errors is None and emu.views("alice") == []
    await emu.wait_for(lambda: emu.messages("C_BOARD"))
    assert emu.messages("C_BOARD")[0]["text"] == "Fix CI / low"


async def test_home_tab_and_disconnect_reconnect(emu, socket_app, client):
    @socket_app.event("app_home_opened")
    async def home(event):
        await client.views_publish(user_id=event["user"], view={"type": "home", "blocks": [
            {"type": "actions", "elements": [{"type": "button", "action_id": "refresh",
                                              "text": {"type": "plain_text", "text": "Refresh"}}]}]})

    @socket_app.action("refresh")
    async def refresh(ack):
        await ack()

    await emu.open_home("carol")
    await emu.wait_for(lambda: emu.home("carol"))
    await emu.disconnect_socket()
    await emu.wait_for(lambda: emu.socket_connections == 2)
    ack = await emu.click_home_button("carol", "refresh")
    assert ack.acked and ack.delivery.payload["container"]["type"] == "view"
