"""Shared by the agent e2e tests (test_acp_e2e, test_codex_e2e): answering an agent's
permission request through its Slack message."""
from __future__ import annotations

from bot.emulator.blockkit import iter_elements
from bot.ids import ActionId
from orchestrator import TaskState
from tests.core.helpers import wait_state

from .conftest import BOARD, OWNER
from .scenario import click_card, wait_board, wait_thread


async def click_option(emu, message: dict, label: str):
    """Click the answer button with this label on an intervention message in the thread."""
    for _block, element in iter_elements(message.get("blocks") or []):
        if element.get("type") == "button" and element.get("text", {}).get("text") == label:
            return await emu.click_button(OWNER, BOARD, message["ts"], element["action_id"], element.get("value"))
    raise AssertionError(f"no {label!r} button on {emu.text_of(message)!r}")


async def blocked_on_permission(emu, core, task_id: int, needle: str) -> dict:
    """Dispatch; the card turns blocked and the thread shows the agent's real request."""
    await click_card(emu, OWNER, ActionId.DISPATCH, task_id)
    await wait_state(core, task_id, TaskState.BLOCKED, timeout=30)
    await wait_board(emu, lambda t: "Blocked" in t and f"#{task_id}" in t, what="card blocked")
    return await wait_thread(emu, task_id, needle, timeout=10)
