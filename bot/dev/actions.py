"""What a person does on the page, done through the emulator's user-side driver.

Each action is what the Slack client would send: a slash command, a message event, a block_actions
payload, a view submission or a message shortcut, delivered over Socket Mode and acked by the bot.
"""
from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any, Literal, overload

from ..emulator import NotAcked
from ..emulator.server import SlackEmulator
from ..ids import CallbackId

# The app's slash commands and message shortcuts, as its manifests declare them.
COMMANDS = {"/task": "[what the agent should do] · help · list"}
SHORTCUTS = [{"callback_id": CallbackId.CREATE_TASK_SHORTCUT.value, "name": "Create agent task"}]
TEXT_MAX = 40_000   # Slack's limit on a message's text


class PageError(Exception):
    """An action the page cannot do; the message is shown to the person as it is."""


def _text(body: dict, key: str = "text") -> str:
    value = body.get(key)
    if not isinstance(value, str):
        raise PageError(f"{key} must be text")
    if len(value) > TEXT_MAX:
        raise PageError(f"that message is too long ({len(value)} characters, at most {TEXT_MAX})")
    return value


@overload
def _str(body: dict, key: str) -> str: ...
@overload
def _str(body: dict, key: str, *, optional: Literal[True]) -> str | None: ...


def _str(body: dict, key: str, *, optional: bool = False) -> str | None:
    value = body.get(key)
    if value is None and optional:
        return None
    if not isinstance(value, str) or not value:
        raise PageError(f"the page sent no {key}")
    return value


async def _command(emu: SlackEmulator, user: str, channel: str, body: dict) -> dict:
    text = _text(body).strip()
    command, _, rest = text.partition(" ")
    if command not in COMMANDS:
        return {"ok": True, "local": f"{command} is not a valid command. In Slack, every message that starts "
                                      "with “/” is read as a command; try /task."}
    await emu.slash_command(user, command, rest.strip(), channel=channel)
    return {"ok": True}


async def _message(emu: SlackEmulator, user: str, channel: str, body: dict) -> dict:
    text = _text(body)
    if not text.strip():
        raise PageError("type a message first")
    await emu.user_message(user, channel, text, thread_ts=_str(body, "thread_ts", optional=True))
    return {"ok": True}


async def _click(emu: SlackEmulator, user: str, channel: str, body: dict) -> dict:
    await emu.click_button(user, channel, _str(body, "ts"), _str(body, "action_id"),
                           _str(body, "value", optional=True))
    return {"ok": True}


async def _select(emu: SlackEmulator, user: str, channel: str, body: dict) -> dict:
    await emu.select_option(user, channel, _str(body, "ts"), _str(body, "action_id"), _str(body, "value"))
    return {"ok": True}


async def _check(emu: SlackEmulator, user: str, channel: str, body: dict) -> dict:
    values = body.get("values")
    if not isinstance(values, list) or not all(isinstance(v, str) for v in values):
        raise PageError("the page sent no list of ticked options")
    await emu.check_boxes(user, channel, _str(body, "ts"), _str(body, "action_id"), values)
    return {"ok": True}


async def _view_click(emu: SlackEmulator, user: str, channel: str, body: dict) -> dict:
    await emu.click_view_button(user, _str(body, "view_id"), _str(body, "action_id"),
                                _str(body, "value", optional=True))
    return {"ok": True}


async def _submit(emu: SlackEmulator, user: str, channel: str, body: dict) -> dict:
    values = body.get("values") or {}
    if not isinstance(values, dict):
        raise PageError("the page sent no form values")
    ack = await emu.submit_view(user, _str(body, "view_id"), values)
    return {"ok": True, "errors": ack.errors or {}}


async def _close(emu: SlackEmulator, user: str, channel: str, body: dict) -> dict:
    await emu.close_view(user, _str(body, "view_id"))
    return {"ok": True}


async def _home(emu: SlackEmulator, user: str, channel: str, body: dict) -> dict:
    await emu.open_home(user)
    return {"ok": True}


async def _shortcut(emu: SlackEmulator, user: str, channel: str, body: dict) -> dict:
    callback_id = _str(body, "callback_id")
    if callback_id not in {s["callback_id"] for s in SHORTCUTS}:
        raise PageError(f"the app has no shortcut {callback_id!r}")
    await emu.message_shortcut(user, channel, _str(body, "ts"), callback_id)
    return {"ok": True}


ACTIONS: dict[str, Callable[[SlackEmulator, str, str, dict], Awaitable[dict]]] = {
    "command": _command, "message": _message, "click": _click, "select": _select, "check": _check,
    "view_click": _view_click, "submit": _submit, "close": _close, "home": _home, "shortcut": _shortcut,
}


async def perform(emu: SlackEmulator, channel: str, body: Any) -> dict:
    """Do one page action as the user it names; a refusal is ``{"ok": False, "error": "…"}``."""
    try:
        if not isinstance(body, dict):
            raise PageError("the page sent something that is not an action")
        kind = body.get("type")
        handler = ACTIONS.get(kind) if isinstance(kind, str) else None
        if handler is None:
            raise PageError(f"unknown action {body.get('type')!r}")
        user = body.get("user")
        if user not in emu.ws.users or user == emu.bot_user_id:
            raise PageError("pick a person to act as")
        return await handler(emu, user, channel, body)
    except NotAcked as exc:
        return {"ok": False, "error": f"taskpin did not answer in time, so Slack would show an error ({exc})."}
    except PageError as exc:
        return {"ok": False, "error": str(exc)}
    except (AssertionError, KeyError, ValueError) as exc:
        # The driver refuses what a Slack client could not do (a message that changed meanwhile…).
        message = exc.args[0] if exc.args else type(exc).__name__
        return {"ok": False, "error": f"Slack would not send that: {message}"}
