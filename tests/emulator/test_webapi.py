"""Web API round trips with the real slack_sdk client."""
from __future__ import annotations

import asyncio

import pytest
from slack_sdk.errors import SlackApiError
from slack_sdk.web.async_client import AsyncWebClient

from bot.emulator import text_of

SECTION = {"type": "section", "text": {"type": "mrkdwn", "text": "*Board*"}}


async def api_error(coro) -> dict:
    with pytest.raises(SlackApiError) as info:
        await coro
    return info.value.response.data


async def test_auth_errors(emu):
    assert (await api_error(AsyncWebClient(base_url=emu.api_url).auth_test()))["error"] == "not_authed"
    bad = AsyncWebClient(token="xoxb-nope", base_url=emu.api_url)
    assert (await api_error(bad.auth_test()))["error"] == "invalid_auth"
    app_client = AsyncWebClient(token=emu.app_token, base_url=emu.api_url)
    assert (await api_error(app_client.auth_test()))["error"] == "not_allowed_token_type"
    assert (await app_client.apps_connections_open(app_token=emu.app_token))["url"].startswith("ws://127.0.0.1:")
    assert emu.count("auth.test", ok=False) == 3


async def test_post_update_thread_pin_round_trip(emu, client):
    posted = await client.chat_postMessage(channel="C_BOARD", text="board", blocks=[SECTION])
    ts = posted["ts"]
    second = await client.chat_postMessage(channel="#taskpin", text="other")
    assert float(second["ts"]) > float(ts)

    await client.chat_update(channel="C_BOARD", ts=ts, text="board v2",
                             blocks=[{"type": "header", "text": {"type": "plain_text", "text": "v2"}}])
    assert text_of(emu.message("C_BOARD", ts)) == "v2"
    assert emu.message("C_BOARD", ts)["edited"]["user"] == emu.bot_user_id
    assert [m["text"] for m in emu.edits("C_BOARD", ts)] == ["board"]

    await client.chat_postMessage(channel="C_BOARD", text="reply 1", thread_ts=ts)
    await emu.user_message("U_OWNER", "C_BOARD", "reply 2", thread_ts=ts, expect_ack=False, timeout=0.1)
    replies = await client.conversations_replies(channel="C_BOARD", ts=ts)
    assert [m["text"] for m in replies["messages"]] == ["board v2", "reply 1", "reply 2"]
    assert emu.message("C_BOARD", ts)["reply_count"] == 2
    assert emu.thread("C_BOARD", ts)[1]["parent_user_id"] == emu.bot_user_id

    await client.pins_add(channel="C_BOARD", timestamp=ts)
    assert (await api_error(client.pins_add(channel="C_BOARD", timestamp=ts)))["error"] == "already_pinned"
    assert [m["ts"] for m in emu.pinned("C_BOARD")] == [ts]
    assert (await client.pins_list(channel="C_BOARD"))["items"][0]["message"]["ts"] == ts
    await client.pins_remove(channel="C_BOARD", timestamp=ts)
    assert (await api_error(client.pins_remove(channel="C_BOARD", timestamp=ts)))["error"] == "no_pin"

    history = await client.conversations_history(channel="C_BOARD")
    assert [m["text"] for m in history["messages"]] == ["other", "board v2"]
    link = await client.chat_getPermalink(channel="C_BOARD", message_ts=ts)
    assert link["permalink"].endswith(ts.replace(".", ""))
    await client.chat_delete(channel="C_BOARD", ts=second["ts"])
    assert [m["ts"] for m in emu.messages("C_BOARD")] == [ts]


@pytest.mark.filterwarnings("ignore:The top-level `text` argument is missing")
async def test_message_errors(emu, client):
    assert (await api_error(client.chat_postMessage(channel="C_NOPE", text="x")))["error"] == "channel_not_found"
    assert (await api_error(client.chat_postMessage(channel="C_BOARD")))["error"] == "no_text"
    assert (await api_error(client.chat_update(channel="C_BOARD", ts="1.000001", text="x")))["error"] == "message_not_found"
    ack = await emu.user_message("U_OWNER", "C_BOARD", "mine", expect_ack=False, timeout=0.1)
    err = await api_error(client.chat_update(channel="C_BOARD", ts=ack.message["ts"], text="hijack"))
    assert err["error"] == "cant_update_message"
    emu.add_channel("C_PRIV", "secret", is_private=True, bot_member=False)
    assert (await api_error(client.chat_postMessage(channel="C_PRIV", text="x")))["error"] == "not_in_channel"


async def test_block_validation(emu, client):
    divider = {"type": "divider"}
    err = await api_error(client.chat_postMessage(channel="C_BOARD", text="x", blocks=[divider] * 51))
    assert err["error"] == "invalid_blocks"
    assert "[json-pointer:/blocks]" in err["response_metadata"]["messages"][0]
    await client.chat_postMessage(channel="C_BOARD", text="x", blocks=[divider] * 50)

    err = await api_error(client.chat_postMessage(channel="C_BOARD", text="y" * 4001))
    assert err["error"] == "msg_too_long"

    button = {"type": "button", "text": {"type": "plain_text", "text": "Go"}, "action_id": "go"}
    dup = [{"type": "actions", "elements": [button]}, {"type": "actions", "elements": [button]}]
    err = await api_error(client.chat_postMessage(channel="C_BOARD", text="x", blocks=dup))
    assert err["error"] == "invalid_blocks" and "duplicate action_id" in err["errors"][0]

    cases = [
        {"type": "section", "text": {"type": "mrkdwn", "text": "s" * 3001}},
        {"type": "section", "fields": [{"type": "mrkdwn", "text": "f"}] * 11},
        {"type": "header", "text": {"type": "mrkdwn", "text": "h"}},
        {"type": "actions", "elements": [{**button, "text": {"type": "plain_text", "text": "b" * 76}}]},
        {"type": "context", "elements": [{"type": "html", "text": "x"}]},
        {"type": "section", "block_id": "b" * 256, "text": {"type": "mrkdwn", "text": "x"}},
        {"type": "carousel"},
    ]
    for block in cases:
        err = await api_error(client.chat_postMessage(channel="C_BOARD", text="x", blocks=[block]))
        assert err["error"] == "invalid_blocks", block
    assert len(emu.messages("C_BOARD")) == 1


async def test_ephemeral_users_and_dm(emu, client):
    r = await client.chat_postEphemeral(channel="C_BOARD", user="U_OWNER", text="only you")
    assert [e["text"] for e in emu.ephemerals("alice")] == ["only you"]
    assert r["message_ts"] and emu.ephemerals("U_OTHER") == []
    assert (await client.users_info(user="U_APPROVER"))["user"]["name"] == "carol"
    dm = await client.chat_postMessage(channel="U_OWNER", text="psst")
    assert emu.messages(dm["channel"])[0]["text"] == "psst"


async def test_views_open_needs_a_fresh_trigger(emu, client):
    emu.trigger_ttl = 0.2
    modal = {"type": "modal", "title": {"type": "plain_text", "text": "New task"},
             "blocks": [{"type": "section", "text": {"type": "mrkdwn", "text": "hi"}}]}
    assert (await api_error(client.views_open(trigger_id="123.456.abc", view=modal)))["error"] == "expired_trigger_id"
    stale = emu.ws.issue_trigger("U_OWNER")
    await asyncio.sleep(0.3)
    assert (await api_error(client.views_open(trigger_id=stale, view=modal)))["error"] == "expired_trigger_id"
    fresh = emu.ws.issue_trigger("U_OWNER")
    too_long = {**modal, "title": {"type": "plain_text", "text": "t" * 25}}
    assert (await api_error(client.views_open(trigger_id=fresh, view=too_long)))["error"] == "invalid_arguments"
    opened = await client.views_open(trigger_id=fresh, view=modal)
    assert [v["id"] for v in emu.views("alice")] == [opened["view"]["id"]]
    await client.views_update(view_id=opened["view"]["id"], view={**modal, "blocks": []})
    assert emu.views("alice")[0]["blocks"] == []

    home = {"type": "home", "blocks": [{"type": "section", "text": {"type": "mrkdwn", "text": "My tasks"}}]}
    await client.views_publish(user_id="U_OWNER", view=home)
    assert text_of(emu.home("U_OWNER")) == "My tasks"
