"""Identifiers shared by the Block Kit renderers and the bolt handlers.

Slack requires action_ids to be unique across a whole message, and the board holds many
cards with the same buttons, so an interactive element's action_id is
``"<ActionId>:<suffix>"`` (suffix = task id, intervention id, ...). Handlers register
``app.action(action_pattern(ActionId.X))`` and read the target from the button ``value``.
"""
from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass
from enum import StrEnum
from typing import Protocol
from urllib.parse import quote, unquote

ACTION_ID_MAX = 255
SEPARATOR = ":"
# static_select and checkbox option values may hold only 150 characters; buttons 2000.
OPTION_VALUE_MAX = 150
BUTTON_VALUE_MAX = 2000
# Task and question ids are 32-bit integers in the store (PostgreSQL `integer`): a value
# outside that range names nothing, and must not reach the database (OverflowError there).
ID_MAX = 2**31 - 1
_DIGITS = re.compile(r"[0-9]{1,10}")


class ActionId(StrEnum):
    # Task card buttons: value = task id.
    DISPATCH = "task_dispatch"
    DISPATCH_ANYWAY = "task_dispatch_anyway"     # a waiting task: start it without its dependencies
    CANCEL = "task_cancel"
    RETRY = "task_retry"
    APPROVE = "task_approve"
    REQUEST_CHANGES = "task_request_changes"
    REJECT = "task_reject"
    # Intervention answers: value = encode_option_value(...).
    ANSWER_OPTION = "intervention_option"          # one button per option
    ANSWER_SELECT = "intervention_select"          # static_select when there are too many options
    ANSWER_CHECKBOXES = "intervention_checkboxes"  # multi-select toggles: ack only, read on submit
    ANSWER_SUBMIT = "intervention_submit"          # value = intervention id; read state.values
    ANSWER_ALWAYS = "intervention_always"          # value = intervention id: allow, and add a policy rule
    # Home tab.
    HOME_PAGE = "home_page"                        # value = page number to show
    OPEN_CREATE_MODAL = "home_create_task"
    OPEN_THREAD = "open_thread"                    # link button: Slack still sends an action; ack only


class CallbackId(StrEnum):
    CREATE_TASK_MODAL = "create_task_modal"
    REQUEST_CHANGES_MODAL = "request_changes_modal"
    CREATE_TASK_SHORTCUT = "create_agent_task"


class InputId(StrEnum):
    """Modal inputs. Each input block uses the same string as block_id and action_id, so
    a submission's value is at ``view["state"]["values"][id][id]``."""

    TITLE = "title"
    PROMPT = "prompt"
    REPO = "repo"
    AGENT = "agent"
    BASE_BRANCH = "base_branch"
    DEPENDS_ON = "depends_on"
    FEEDBACK = "feedback"


def make_action_id(action: ActionId, *suffix: object) -> str:
    action_id = SEPARATOR.join([str(action), *(str(part) for part in suffix)])
    if len(action_id) > ACTION_ID_MAX:
        raise ValueError(f"action_id longer than {ACTION_ID_MAX} characters: {action_id[:40]}…")
    return action_id


def parse_action_id(action_id: str) -> tuple[ActionId, str]:
    """``"task_dispatch:12"`` -> ``(ActionId.DISPATCH, "12")``. Raises ValueError when unknown."""
    prefix, _, suffix = action_id.partition(SEPARATOR)
    return ActionId(prefix), suffix


def action_pattern(action: ActionId) -> re.Pattern[str]:
    """Regex for ``app.action(...)`` matching this action with any suffix."""
    return ACTION_PATTERNS[action]


ACTION_PATTERNS: dict[ActionId, re.Pattern[str]] = {
    action: re.compile(rf"^{re.escape(action.value)}(?:{SEPARATOR}.*)?$") for action in ActionId
}


def parse_id(value: object, *, lowest: int = 1) -> int:
    """A task or question id (or an index) from a value Slack sent back: plain ASCII digits
    within the store's range. Raises ValueError for anything else (huge, signed, "1e9", "١")."""
    if isinstance(value, str) and _DIGITS.fullmatch(value) and lowest <= int(value) <= ID_MAX:
        return int(value)
    raise ValueError(f"not a taskpin id: {str(value)[:40]!r}")


def task_id_from_value(value: object) -> int:
    """Card buttons carry only the task id."""
    return parse_id(value)


class _HasId(Protocol):
    @property
    def id(self) -> str: ...


@dataclass(frozen=True)
class OptionRef:
    """A decoded intervention option value: the option id, or its index when the id was too
    long to fit in the value."""

    intervention_id: int
    option_id: str | None = None
    index: int | None = None

    def resolve(self, options: Sequence[_HasId]) -> str | None:
        """The option id this value points at, or None when it names no offered option."""
        if self.option_id is not None:
            return self.option_id if any(o.id == self.option_id for o in options) else None
        if self.index is not None and 0 <= self.index < len(options):
            return options[self.index].id
        return None


def encode_option_value(intervention_id: int, option_id: str, index: int, *, limit: int = OPTION_VALUE_MAX) -> str:
    """``"<intervention id>:<percent-encoded option id>"``.

    Option ids come from agents (any characters, any length). Percent-encoding keeps a ``:``
    inside an id from confusing the parser; an id too long for the value limit is replaced
    by its position, ``"<intervention id>#<index>"``.
    """
    value = f"{intervention_id}{SEPARATOR}{quote(option_id, safe='')}"
    if len(value) <= limit:
        return value
    return f"{intervention_id}#{index}"


def decode_option_value(value: object) -> OptionRef:
    if not isinstance(value, str):
        raise ValueError(f"not an intervention option value: {value!r}")
    head, sep, rest = value.partition(SEPARATOR)
    if sep:
        return OptionRef(parse_id(head), option_id=unquote(rest))
    head, sep, rest = value.partition("#")
    if sep:
        return OptionRef(parse_id(head), index=parse_id(rest, lowest=0))
    raise ValueError(f"not an intervention option value: {value[:40]!r}")
