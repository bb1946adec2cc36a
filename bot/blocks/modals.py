"""Modals: create a task, request changes on a task under review."""
from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from orchestrator.models import TaskView

from ..ids import CallbackId, InputId
from .kit import Block, context, option, plain_text
from .limits import OPTION_VALUE_MAX, PLAIN_TEXT_INPUT_MAX, PRIVATE_METADATA_MAX, SELECT_OPTIONS_MAX
from .text import inline_code, one_line, plain, safe_text

TASK_TITLE_MAX = 150
BRANCH_MAX = 200
DEPENDS_ON_MAX = 300


def create_task_modal(
    *,
    repos: Sequence[str],
    agents: Sequence[str],
    default_repo: str | None,
    default_agent: str | None,
    prompt: str = "",
    title: str = "",
    private_metadata: str = "",
) -> dict:
    """The "New agent task" modal; ``prompt``/``title`` prefill it (e.g. from a message shortcut)."""
    if len(private_metadata) > PRIVATE_METADATA_MAX:
        raise ValueError(f"private_metadata over {PRIVATE_METADATA_MAX} characters")
    blocks = [
        # Optional: the core titles a task with the first line of its prompt.
        _text_input(InputId.TITLE, "Title", initial=one_line(title), max_length=TASK_TITLE_MAX, optional=True,
                    placeholder="the first line of the prompt"),
        _text_input(InputId.PROMPT, "What should the agent do?", initial=prompt, max_length=PLAIN_TEXT_INPUT_MAX,
                    multiline=True, placeholder="Describe the change, where to look and how to check it"),
        _choice_input(InputId.REPO, "Repository", repos, default_repo),
        _choice_input(InputId.AGENT, "Agent", agents, default_agent),
        _text_input(InputId.BASE_BRANCH, "Base branch", max_length=BRANCH_MAX, optional=True,
                    placeholder="the repository's default"),
        _text_input(InputId.DEPENDS_ON, "Waits for", max_length=DEPENDS_ON_MAX, optional=True,
                    placeholder="#12 #13: it starts when those tasks complete"),
    ]
    if len(prompt) > PLAIN_TEXT_INPUT_MAX:
        blocks.insert(2, context(f"The prefilled prompt was cut to {PLAIN_TEXT_INPUT_MAX} characters."))
    return _modal(CallbackId.CREATE_TASK_MODAL, "New agent task", "Create task", blocks, private_metadata)


def request_changes_modal(task: TaskView) -> dict:
    """Feedback for a task under review; ``private_metadata`` holds the task id."""
    about = f"*{task.short_id}* {safe_text(one_line(task.title), 150)}"
    if task.branch:
        about += f" · {inline_code(task.branch)}"
    blocks = [
        {"type": "section", "block_id": "about", "text": {"type": "mrkdwn", "text": about, "verbatim": True}},
        _text_input(InputId.FEEDBACK, "What should change?", max_length=PLAIN_TEXT_INPUT_MAX, multiline=True,
                    placeholder="The agent continues on the same branch with this feedback"),
    ]
    return _modal(CallbackId.REQUEST_CHANGES_MODAL, "Request changes", "Send to agent", blocks, str(task.id))


def modal_values(view: Mapping[str, Any]) -> dict[str, str]:
    """Submitted values by InputId: text inputs and static selects; empty ones left out."""
    values: dict[str, str] = {}
    for block_id, actions_by_id in (view.get("state") or {}).get("values", {}).items():
        state = actions_by_id.get(block_id) or {}
        value = state.get("value")
        if state.get("selected_option"):
            value = state["selected_option"].get("value")
        if value is not None and str(value).strip():
            values[block_id] = str(value).strip()
    return values


def _modal(callback_id: CallbackId, title: str, submit: str, blocks: list[Block], private_metadata: str) -> dict:
    view = {
        "type": "modal",
        "callback_id": str(callback_id),
        "title": plain_text(title, 24),
        "submit": plain_text(submit, 24),
        "close": plain_text("Cancel", 24),
        "blocks": blocks,
    }
    if private_metadata:
        view["private_metadata"] = private_metadata
    return view


def _input(field: InputId, label: str, element: dict, *, optional: bool = False) -> Block:
    element["action_id"] = str(field)
    return {"type": "input", "block_id": str(field), "label": plain_text(label, 2000), "element": element,
            "optional": optional}


def _text_input(
    field: InputId,
    label: str,
    *,
    initial: str = "",
    max_length: int,
    multiline: bool = False,
    optional: bool = False,
    placeholder: str = "",
) -> Block:
    element: dict[str, Any] = {"type": "plain_text_input", "multiline": multiline, "max_length": max_length}
    if initial:
        element["initial_value"] = initial[:max_length]
    if placeholder:
        element["placeholder"] = plain_text(placeholder, 150)
    return _input(field, label, element, optional=optional)


def _choice_input(field: InputId, label: str, names: Sequence[str], default: str | None) -> Block:
    """A select of the configured names; a text input when there are none or too many to list."""
    names = [name for name in dict.fromkeys(names) if 0 < len(name) <= OPTION_VALUE_MAX]
    if not names or len(names) > SELECT_OPTIONS_MAX:
        return _text_input(field, label, initial=default or "", max_length=OPTION_VALUE_MAX)
    options = [option(plain(name, 75), name) for name in names]
    element: dict[str, Any] = {"type": "static_select", "options": options,
                               "placeholder": plain_text(f"Choose {label.lower()}", 150)}
    if default in names:
        element["initial_option"] = options[names.index(default)]
    elif len(names) == 1:
        element["initial_option"] = options[0]
    return _input(field, label, element)
