"""slack_sdk's clients as taskpin configures them: every 5xx (HTML, JSON, plain text), timeouts and
refused connections are retried inside the client, except a chat.postMessage that may have been
posted (the outbox resends that one after looking for it). Every outcome reaches SlackHealth."""
from __future__ import annotations

import pytest
from slack_sdk.errors import SlackApiError

from bot.slack_client import make_client
from bot.slack_errors import Kind, classify
from bot.slack_health import SlackHealth

CASES = [(status, body) for status in (500, 502, 503, 504) for body in ("html", "json", "text")]


@pytest.fixture
def client(emu):
    health = SlackHealth()
    return make_client(emu.bot_token, emu.api_url, health=health, timeout_s=0.5, backoff_s=0.01), health


@pytest.mark.parametrize("status,body", CASES, ids=[f"{s}-{b}" for s, b in CASES])
async def test_a_5xx_is_retried_and_the_call_succeeds(emu, client, status, body):
    web, health = client
    emu.faults.http_error("chat.update", status, body=body, times=1)
    posted = await web.chat_postMessage(channel="C_BOARD", text="board")
    response = await web.chat_update(channel="C_BOARD", ts=posted["ts"], text="edited")
    assert response["ok"] and emu.faults.count("chat.update") == 1 and emu.count("chat.update") == 1
    assert health.ok


async def test_timeouts_and_refused_connections_are_retried(emu, client):
    web, health = client
    emu.faults.hang("auth.test", hang_s=2, times=1)
    assert (await web.auth_test())["ok"]
    patient = make_client(emu.bot_token, emu.api_url, health=health, timeout_s=0.5, backoff_s=0.3)
    await emu.faults.outage(0.3)   # refused: the post surely did not happen, so it is retried (>= 0.9 s)
    assert (await patient.chat_postMessage(channel="C_BOARD", text="after the outage"))["ok"]
    assert health.ok and emu.faults.count("auth.test") == 1


async def test_a_post_that_may_have_happened_is_not_resent_by_the_client(emu, client):
    web, health = client
    emu.faults.http_error("chat.postMessage", 502, body="html", times=1)
    with pytest.raises(SlackApiError) as raised:
        await web.chat_postMessage(channel="C_BOARD", text="maybe posted")
    failure = classify(raised.value)
    assert failure.kind is Kind.UNREACHABLE and failure.ambiguous and failure.reason == "HTTP 502"
    assert emu.faults.count("chat.postMessage") == 1 and emu.count("chat.postMessage") == 0
    assert health.problem == "web api unreachable: HTTP 502"
    assert (await web.auth_test())["ok"] and health.ok
