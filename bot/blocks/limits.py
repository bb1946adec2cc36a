"""Slack's Block Kit limits, and checkers for what slack_sdk's models do not check.

``validate_message`` / ``validate_view`` run every block through slack_sdk's models (which
check most per-element lengths) and then check the rest: block counts, section fields,
fallback text, unique ids, total text size. They raise ValueError naming the first
problem, so the runtime can refuse a payload before Slack does.
"""
from __future__ import annotations

import json
from collections.abc import Iterator, Mapping, Sequence
from typing import Any

from slack_sdk.errors import SlackObjectFormationError
from slack_sdk.models.blocks import Block
from slack_sdk.models.views import View

MESSAGE_MAX_BLOCKS = 50
VIEW_MAX_BLOCKS = 100
SECTION_TEXT_MAX = 3000
SECTION_FIELDS_MAX = 10
FIELD_TEXT_MAX = 2000
HEADER_TEXT_MAX = 150
CONTEXT_MAX_ELEMENTS = 10
ACTIONS_MAX_ELEMENTS = 25
BUTTON_TEXT_MAX = 75
BUTTON_VALUE_MAX = 2000
BUTTON_URL_MAX = 3000
ACTION_ID_MAX = 255
BLOCK_ID_MAX = 255
SELECT_OPTIONS_MAX = 100
CHECKBOX_OPTIONS_MAX = 10
OPTION_TEXT_MAX = 75
OPTION_VALUE_MAX = 150
PLAIN_TEXT_INPUT_MAX = 3000
FALLBACK_TEXT_MAX = 4000
# Slack answers msg_blocks_too_long once a message's block text passes roughly 13,000
# characters in total, well below the documented limits; stay clearly under it.
MESSAGE_TOTAL_TEXT_MAX = 12000
MODAL_TITLE_MAX = 24
PRIVATE_METADATA_MAX = 3000
CALLBACK_ID_MAX = 255
VIEW_BYTES_MAX = 250_000


def validate_message(payload: Mapping[str, Any]) -> None:
    """Check a ``{"text", "blocks"}`` message payload; raise ValueError on the first violation."""
    text = payload.get("text")
    blocks = payload.get("blocks") or []
    if not isinstance(text, str) or not text.strip():
        raise ValueError("message needs a non-empty fallback text")
    if len(text) > FALLBACK_TEXT_MAX:
        raise ValueError(f"fallback text has {len(text)} characters (max {FALLBACK_TEXT_MAX})")
    if len(blocks) > MESSAGE_MAX_BLOCKS:
        raise ValueError(f"message has {len(blocks)} blocks (max {MESSAGE_MAX_BLOCKS})")
    _validate_blocks(blocks)
    total = total_text_chars(blocks)
    if total > MESSAGE_TOTAL_TEXT_MAX:
        raise ValueError(f"message blocks hold {total} characters of text (max {MESSAGE_TOTAL_TEXT_MAX})")


def validate_view(view: Mapping[str, Any]) -> None:
    """Check a modal or Home tab view; raise ValueError on the first violation."""
    blocks = view.get("blocks") or []
    if not 0 < len(blocks) <= VIEW_MAX_BLOCKS:
        raise ValueError(f"view has {len(blocks)} blocks (must be 1..{VIEW_MAX_BLOCKS})")
    if view.get("type") == "modal":
        title = (view.get("title") or {}).get("text", "")
        if not 0 < len(title) <= MODAL_TITLE_MAX:
            raise ValueError(f"modal title must be 1..{MODAL_TITLE_MAX} characters: {title!r}")
    if len(view.get("private_metadata") or "") > PRIVATE_METADATA_MAX:
        raise ValueError(f"private_metadata over {PRIVATE_METADATA_MAX} characters")
    _validate_blocks(blocks)
    try:
        View(**view).to_dict()
    except (SlackObjectFormationError, TypeError) as exc:
        raise ValueError(f"invalid view: {exc}") from exc
    size = len(json.dumps(view, ensure_ascii=False).encode())
    if size > VIEW_BYTES_MAX:
        raise ValueError(f"view is {size} bytes (max {VIEW_BYTES_MAX})")


def total_text_chars(blocks: Sequence[Mapping[str, Any]]) -> int:
    """Characters in every text object of these blocks (what msg_blocks_too_long counts)."""
    return sum(len(text) for text in _texts(blocks))


def _texts(node: Any) -> Iterator[str]:
    if isinstance(node, Mapping):
        if node.get("type") in ("mrkdwn", "plain_text") and isinstance(node.get("text"), str):
            yield node["text"]
            return
        for value in node.values():
            yield from _texts(value)
    elif isinstance(node, list):
        for item in node:
            yield from _texts(item)


def _validate_blocks(blocks: Sequence[Mapping[str, Any]]) -> None:
    block_ids: set[str] = set()
    action_ids: set[str] = set()
    for position, block in enumerate(blocks):
        where = f"block {position} ({block.get('type')}, {block.get('block_id')!r})"
        parsed = Block.parse(dict(block))
        if parsed is None:
            raise ValueError(f"{where}: unknown block type")
        try:
            parsed.to_dict()
        except SlackObjectFormationError as exc:
            raise ValueError(f"{where}: {exc}") from exc
        block_id = block.get("block_id")
        if block_id is not None:
            if block_id in block_ids:
                raise ValueError(f"{where}: duplicate block_id")
            if len(block_id) > BLOCK_ID_MAX:
                raise ValueError(f"{where}: block_id over {BLOCK_ID_MAX} characters")
            block_ids.add(block_id)
        _check_block(block, where)
        for element in _elements(block):
            _check_element(element, where)
            action_id = element.get("action_id")
            if action_id is not None:
                if action_id in action_ids:
                    raise ValueError(f"{where}: duplicate action_id {action_id!r}")
                action_ids.add(action_id)


def _check_block(block: Mapping[str, Any], where: str) -> None:
    kind = block.get("type")
    if kind == "section":
        text = (block.get("text") or {}).get("text")
        if text is not None:
            _check_length(text, SECTION_TEXT_MAX, f"{where}: section text", allow_empty=False)
        fields = block.get("fields") or []
        if len(fields) > SECTION_FIELDS_MAX:
            raise ValueError(f"{where}: {len(fields)} fields (max {SECTION_FIELDS_MAX})")
        for field in fields:
            _check_length(field.get("text", ""), FIELD_TEXT_MAX, f"{where}: field", allow_empty=False)
    elif kind == "header":
        _check_length(block["text"]["text"], HEADER_TEXT_MAX, f"{where}: header", allow_empty=False)
    elif kind == "context":
        elements = block.get("elements") or []
        if not 0 < len(elements) <= CONTEXT_MAX_ELEMENTS:
            raise ValueError(f"{where}: context needs 1..{CONTEXT_MAX_ELEMENTS} elements")
        for element in elements:
            if "text" in element:
                _check_length(element["text"], SECTION_TEXT_MAX, f"{where}: context text", allow_empty=False)
    elif kind == "actions":
        elements = block.get("elements") or []
        if not 0 < len(elements) <= ACTIONS_MAX_ELEMENTS:
            raise ValueError(f"{where}: actions needs 1..{ACTIONS_MAX_ELEMENTS} elements")


def _elements(block: Mapping[str, Any]) -> Iterator[Mapping[str, Any]]:
    if block.get("accessory"):
        yield block["accessory"]
    if block.get("element"):
        yield block["element"]
    if block.get("type") == "actions":
        yield from block.get("elements") or []


def _check_element(element: Mapping[str, Any], where: str) -> None:
    kind = element.get("type")
    action_id = element.get("action_id")
    if action_id is not None:
        _check_length(action_id, ACTION_ID_MAX, f"{where}: action_id", allow_empty=False)
    if kind == "button":
        _check_length(element["text"]["text"], BUTTON_TEXT_MAX, f"{where}: button text", allow_empty=False)
        _check_length(element.get("value", ""), BUTTON_VALUE_MAX, f"{where}: button value")
        _check_length(element.get("url", ""), BUTTON_URL_MAX, f"{where}: button url")
    options = list(element.get("options") or [])
    for group in element.get("option_groups") or []:
        options.extend(group.get("options") or [])
    if kind == "checkboxes" and len(options) > CHECKBOX_OPTIONS_MAX:
        raise ValueError(f"{where}: checkboxes with {len(options)} options (max {CHECKBOX_OPTIONS_MAX})")
    if len(options) > SELECT_OPTIONS_MAX:
        raise ValueError(f"{where}: {len(options)} options (max {SELECT_OPTIONS_MAX})")
    for option in options:
        _check_length(option["text"]["text"], OPTION_TEXT_MAX, f"{where}: option text", allow_empty=False)
        _check_length(option.get("value", ""), OPTION_VALUE_MAX, f"{where}: option value")
    if kind == "plain_text_input":
        max_length = element.get("max_length", PLAIN_TEXT_INPUT_MAX)
        if max_length > PLAIN_TEXT_INPUT_MAX:
            raise ValueError(f"{where}: plain_text_input max_length over {PLAIN_TEXT_INPUT_MAX}")
        _check_length(element.get("initial_value", ""), max_length, f"{where}: initial_value")


def _check_length(text: str, limit: int, what: str, *, allow_empty: bool = True) -> None:
    if not allow_empty and not text:
        raise ValueError(f"{what} is empty")
    if len(text) > limit:
        raise ValueError(f"{what} has {len(text)} characters (max {limit})")
