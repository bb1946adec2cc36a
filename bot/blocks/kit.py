"""Tiny Block Kit builders returning plain dicts (what the Web API takes)."""
from __future__ import annotations

from typing import Any

from .limits import BUTTON_TEXT_MAX, HEADER_TEXT_MAX, OPTION_TEXT_MAX
from .text import plain, truncate

Block = dict[str, Any]


def mrkdwn(text: str) -> dict:
    # verbatim: Slack must not auto-link channel names or parse bare mentions in our text.
    return {"type": "mrkdwn", "text": text, "verbatim": True}


def plain_text(text: str, limit: int | None = None) -> dict:
    return {"type": "plain_text", "text": plain(text, limit) if limit else text, "emoji": True}


def header(text: str, *, block_id: str | None = None) -> Block:
    return _with_id({"type": "header", "text": plain_text(text, HEADER_TEXT_MAX)}, block_id)


def section(text: str, *, block_id: str | None = None, accessory: dict | None = None) -> Block:
    block = _with_id({"type": "section", "text": mrkdwn(text)}, block_id)
    if accessory:
        block["accessory"] = accessory
    return block


def context(*texts: str, block_id: str | None = None) -> Block:
    return _with_id({"type": "context", "elements": [mrkdwn(t) for t in texts if t]}, block_id)


def divider() -> Block:
    return {"type": "divider"}


def actions(elements: list[dict], *, block_id: str) -> Block:
    return {"type": "actions", "block_id": block_id, "elements": elements}


def button(
    text: str,
    *,
    action_id: str,
    value: str | None = None,
    style: str | None = None,
    url: str | None = None,
    confirm: dict | None = None,
) -> dict:
    element: dict[str, Any] = {"type": "button", "text": plain_text(text, BUTTON_TEXT_MAX), "action_id": action_id}
    if value is not None:
        element["value"] = value
    if style in ("primary", "danger"):
        element["style"] = style
    if url:
        element["url"] = url
    if confirm:
        element["confirm"] = confirm
    return element


def confirm_dialog(title: str, text: str, *, confirm: str, deny: str = "Keep it", style: str = "danger") -> dict:
    return {
        "title": plain_text(title, 100),
        "text": mrkdwn(truncate(text, 300)),
        "confirm": plain_text(confirm, 30),
        "deny": plain_text(deny, 30),
        "style": style,
    }


def option(text: str, value: str, description: str = "") -> dict:
    item: dict[str, Any] = {"text": plain_text(text or value, OPTION_TEXT_MAX), "value": value}
    if description:
        item["description"] = plain_text(description, OPTION_TEXT_MAX)
    return item


def _with_id(block: Block, block_id: str | None) -> Block:
    if block_id:
        block["block_id"] = block_id
    return block
