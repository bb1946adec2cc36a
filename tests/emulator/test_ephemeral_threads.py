"""An ephemeral answer through response_url shows where the click was: in the thread for a thread reply."""
from __future__ import annotations

BUTTON = [{"type": "actions", "block_id": "a", "elements": [
    {"type": "button", "action_id": "go", "value": "1", "text": {"type": "plain_text", "text": "Go"}}]}]


async def test_an_ephemeral_reply_to_a_click_in_a_thread_stays_in_that_thread(emu, client, socket_app):
    @socket_app.action("go")
    async def go(ack, respond):
        await ack()
        await respond(text="only you can see this", response_type="ephemeral", replace_original=False)

    top = await client.chat_postMessage(channel="C_BOARD", text="top", blocks=BUTTON)
    reply = await client.chat_postMessage(channel="C_BOARD", text="reply", blocks=BUTTON, thread_ts=top["ts"])
    await emu.click_button("U_OWNER", "C_BOARD", reply["ts"], "go", "1")
    await emu.click_button("U_OWNER", "C_BOARD", top["ts"], "go", "1")
    in_thread, in_channel = await emu.wait_for(lambda: len(emu.ephemerals(user="U_OWNER")) == 2
                                               and emu.ephemerals(user="U_OWNER"))
    assert in_thread["thread_ts"] == top["ts"] and in_thread["text"] == "only you can see this"
    assert "thread_ts" not in in_channel
