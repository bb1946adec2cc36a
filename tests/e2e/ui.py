"""What a user sees and does, for the interaction tests: clicks that wait for the button to be
shown, thread and ephemeral lookups, the agent's stdin log, and the 3-second ack rule."""
from __future__ import annotations

import json
from pathlib import Path

import pytest

from bot.emulator.blockkit import iter_elements
from bot.ids import ActionId, make_action_id

from .conftest import BOARD
from .scenario import board_message, thread_of, wait_thread

ACK_LIMIT_S = 3.0


def fast(ack):
    """The app acked, within Slack's 3 seconds."""
    assert ack.acked, f"{ack.delivery.kind} was not acked"
    assert ack.latency is not None and ack.latency < ACK_LIMIT_S, f"{ack.delivery.kind} acked in {ack.latency}s"
    return ack


@pytest.fixture(autouse=True)
async def every_ack_is_fast(emu):
    """After each test: every delivery (user actions and the bot's own echoed events) was acked in time."""
    yield
    for delivery in emu.deliveries:
        if delivery.ack is None or delivery.ack.extra.get("error"):
            continue    # a background echo still in flight, or sent after taskpin stopped
        assert delivery.ack.acked, f"{delivery.kind} was never acked"
        assert delivery.ack.latency < ACK_LIMIT_S, f"{delivery.kind} acked after {delivery.ack.latency:.2f}s"


def buttons(message: dict | None) -> list[dict]:
    return [el for _, el in iter_elements((message or {}).get("blocks") or [])]


def has_controls(message: dict | None) -> bool:
    return any(b.get("type") == "actions" for b in (message or {}).get("blocks") or [])


async def click_card(emu, user: str, action: ActionId, task_id: int):
    """Click a card's button on the pinned board, once the board shows it (as a user would)."""
    action_id = make_action_id(action, task_id)

    def shown():
        if not emu.pinned(BOARD):
            return None
        board = board_message(emu)
        return board if any(el.get("action_id") == action_id for el in buttons(board)) else None

    board = await emu.wait_for(shown, timeout=6)
    return fast(await emu.click_button(user, BOARD, board["ts"], action_id, str(task_id)))


async def thread_ts(emu, task_id: int) -> str:
    async def find():
        try:
            return thread_of(emu, task_id)[0]
        except StopIteration:
            return None
    return await emu.wait_for(find, timeout=6)


async def in_thread(emu, task_id: int, needle: str, timeout: float = 6.0) -> dict:
    """The first reply in the task's thread whose visible text contains `needle`."""
    return await wait_thread(emu, task_id, needle, timeout)


async def ephemeral(emu, user: str, needle: str, timeout: float = 5.0) -> dict:
    """The ephemeral message `user` got whose text contains `needle`."""
    def find():
        return next((e for e in emu.ephemerals(user=user) if needle in emu.text_of(e) or needle in e.get("text", "")),
                    None)
    try:
        return await emu.wait_for(find, timeout=timeout)
    except TimeoutError:
        seen = [emu.text_of(e) or e.get("text") for e in emu.ephemerals(user=user)]
        raise AssertionError(f"{user} got no ephemeral with {needle!r}; got {seen}") from None


async def message_now(emu, ts: str, predicate, timeout: float = 5.0) -> dict:
    """Wait until the channel message `ts` satisfies `predicate` (it is edited in place)."""
    try:
        return await emu.wait_for(lambda: (m := emu.message(BOARD, ts)) is not None and predicate(m) and m,
                                  timeout=timeout)
    except TimeoutError:
        raise AssertionError(f"message {ts} now shows: {emu.text_of(emu.message(BOARD, ts))!r}") from None


def stdin_lines(log: Path) -> list[dict]:
    """Every line the scripted agent read from stdin, parsed (the first is the prompt)."""
    if not log.exists():
        return []
    return [json.loads(line) for line in log.read_text().splitlines() if line.strip()]


def lines_of_type(log: Path, kind: str) -> list[dict]:
    return [line for line in stdin_lines(log) if line.get("type") == kind]


async def slash_task(emu, core, text: str, user: str = "U_OWNER"):
    """`/task <text>` as `user`; the task it created (the bot creates it just after the ack)."""
    before = {t.id for t in await core.list_tasks()}
    fast(await emu.slash_command(user, "/task", text))

    async def new():
        return [t for t in await core.list_tasks() if t.id not in before]
    [task] = await emu.wait_for(new, timeout=5)
    return task
