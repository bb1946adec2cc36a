"""Interventions: an agent's question or permission request, posted in the task's thread."""
from __future__ import annotations

import re
from collections.abc import Sequence
from datetime import datetime

from orchestrator.models import InterventionKind, InterventionStatus, InterventionView, Option, TaskView

from ..ids import ActionId, encode_option_value, make_action_id
from .kit import Block, actions, button, confirm_dialog, context, option, section
from .limits import (
    ACTIONS_MAX_ELEMENTS,
    BUTTON_VALUE_MAX,
    CHECKBOX_OPTIONS_MAX,
    MESSAGE_TOTAL_TEXT_MAX,
    OPTION_VALUE_MAX,
    SECTION_TEXT_MAX,
    SELECT_OPTIONS_MAX,
    total_text_chars,
)
from .text import code_block, escape_mrkdwn, fmt_elapsed, one_line, plain, safe_text, truncate, user_mention

PROMPT_MAX = 2400
FALLBACK_PROMPT_MAX = 300
ANSWER_TEXT_MAX = 1500
DESCRIPTION_MAX = 200
# Checkbox groups hold 10 options each and each needs its own block; stay well under 50.
CHECKBOX_GROUPS_MAX = 40
TITLE_MAX = 120
HINT_RESERVE = 400          # the reply hint, select placeholders and the submit button
OPTION_COST_OVERHEAD = 2    # slack per option in the text budget


def render_intervention(task: TaskView, intervention: InterventionView, *, owner: str) -> dict:
    """The message asking the owner: question or permission details, answer controls, a hint."""
    iid = intervention.id
    blocks = [section(_question_text(task, intervention, mention=user_mention(owner)), block_id=f"intervention:{iid}")]
    blocks += _detail_blocks(intervention)
    as_buttons = not intervention.multi_select and len(intervention.options) <= ACTIONS_MAX_ELEMENTS
    descriptions = _descriptions(intervention.options) if as_buttons else ""  # selects show their own
    if descriptions:
        blocks.append(section(descriptions, block_id=f"intervention_choices:{iid}"))
    text_budget = MESSAGE_TOTAL_TEXT_MAX - total_text_chars(blocks) - HINT_RESERVE
    controls, left_out = _controls(intervention, text_budget)
    blocks += controls
    blocks.append(context(_reply_hint(intervention, left_out), block_id=f"intervention_hint:{iid}"))
    return {"text": _fallback(task, intervention, user_mention(owner)), "blocks": blocks}


def render_intervention_resolved(task: TaskView, intervention: InterventionView) -> dict:
    """The same message once settled: what was asked, who answered what; no controls."""
    iid = intervention.id
    blocks = [section(_question_text(task, intervention, mention=None), block_id=f"intervention:{iid}")]
    blocks += _detail_blocks(intervention)
    outcome = _outcome(intervention)
    blocks.append(section(outcome, block_id=f"intervention_outcome:{iid}"))
    # The outcome is already mrkdwn-safe: only the title needs escaping.
    # On one line a quote's ">" markers would be stray control characters: drop them.
    flat = one_line(re.sub(r"(?m)^> ?", "", outcome))
    text = f"{task.short_id} {safe_text(one_line(task.title), TITLE_MAX)}: {flat}"
    return {"text": truncate(text, FALLBACK_PROMPT_MAX), "blocks": blocks}


def render_intervention_reminder(
    task: TaskView, intervention: InterventionView, *, owner: str, now: datetime
) -> dict:
    """A nudge posted as a new reply; the buttons stay on the original message."""
    waited = fmt_elapsed(intervention.created_at, now)
    how = (
        "Use the buttons above, or reply here to deny it with a message."
        if intervention.kind == InterventionKind.PERMISSION
        else "Use the buttons above or reply in this thread."
    )
    text = (
        f"⏰ {user_mention(owner)} *{task.short_id}* {safe_text(one_line(task.title), TITLE_MAX)}"
        f" has been waiting for your answer for {waited}. {how}"
    )
    return {
        "text": truncate(f"{user_mention(owner)} {task.short_id} is still waiting for your answer", 4000),
        "blocks": [section(text, block_id=f"intervention_reminder:{intervention.id}")],
    }


def _question_text(task: TaskView, intervention: InterventionView, *, mention: str | None) -> str:
    title = safe_text(one_line(task.title), TITLE_MAX)
    head = f"{mention} " if mention else ""
    pending = intervention.status == InterventionStatus.PENDING
    if intervention.kind == InterventionKind.PERMISSION:
        tool = safe_text(one_line(intervention.tool or "a tool"), 100)
        asks = f"wants to use *{tool}*" if pending else f"asked to use *{tool}*"
    else:
        asks = "asks:" if pending else "asked:"
    text = f"{head}*{task.short_id}* {title} — the agent {asks}"
    prompt = intervention.prompt.strip()
    if prompt:
        text += "\n" + _quote(prompt, PROMPT_MAX)
    return truncate(text, SECTION_TEXT_MAX)


def _quote(text: str, limit: int) -> str:
    """Escaped text as a blockquote (the ``>`` markers are ours, the text is escaped)."""
    quoted = "\n".join(f"> {escape_mrkdwn(line)}" for line in text.splitlines())
    return truncate(quoted, limit)


def _detail_blocks(intervention: InterventionView) -> list[Block]:
    if intervention.kind != InterventionKind.PERMISSION or not intervention.detail:
        return []
    return [section(code_block(intervention.detail, SECTION_TEXT_MAX), block_id=f"intervention_detail:{intervention.id}")]


def _descriptions(options: Sequence[Option]) -> str:
    """A legend for options that carry descriptions (buttons cannot show them)."""
    lines = [
        f"• *{safe_text(one_line(o.label or o.id), 75)}* — {safe_text(one_line(o.description), DESCRIPTION_MAX)}"
        for o in options
        if o.description
    ]
    return truncate("\n".join(lines), SECTION_TEXT_MAX) if lines else ""


def _controls(intervention: InterventionView, text_budget: int) -> tuple[list[Block], int]:
    """Answer controls and how many options did not fit in them."""
    options = intervention.options
    if not options:
        return [], 0
    if intervention.multi_select:
        return _checkboxes(intervention, text_budget)
    if len(options) <= ACTIONS_MAX_ELEMENTS:
        elements = [_option_button(intervention.id, index, o) for index, o in enumerate(options)]
        if _always_allowable(intervention) and len(elements) < ACTIONS_MAX_ELEMENTS:
            elements.append(_always_button(intervention))
        return [actions(elements, block_id=f"intervention_options:{intervention.id}")], 0
    return _selects(intervention, text_budget)


def _options_within(options: Sequence[Option], capacity: int, text_budget: int) -> Sequence[Option]:
    """The leading options that fit both the element capacity and the message text budget."""
    used = 0
    for count, choice in enumerate(options[:capacity]):
        used += OPTION_COST_OVERHEAD + min(len(choice.label or choice.id), 75) + min(len(choice.description), 75)
        if used > text_budget:
            return options[:count]
    return options[:capacity]


def _option_button(intervention_id: int, index: int, choice: Option) -> dict:
    return button(
        choice.label or choice.id,
        action_id=make_action_id(ActionId.ANSWER_OPTION, intervention_id, index),
        value=encode_option_value(intervention_id, choice.id, index, limit=BUTTON_VALUE_MAX),
        style=_style_for(choice.kind),
    )


def _always_allowable(intervention: InterventionView) -> bool:
    """A permission for a named tool that the agent lets us allow: a rule can be written for it."""
    return (intervention.kind == InterventionKind.PERMISSION and bool(intervention.tool)
            and any(_style_for(o.kind) == "primary" for o in intervention.options))


def _always_button(intervention: InterventionView) -> dict:
    what = safe_text(one_line(f"{intervention.tool}" + (f" {intervention.detail}" if intervention.detail else "")),
                     150)
    return button(
        "Always allow this",
        action_id=make_action_id(ActionId.ANSWER_ALWAYS, intervention.id),
        value=str(intervention.id),
        confirm=confirm_dialog(
            "Always allow this?",
            f"{what}\nAllowed now, and from now on without asking: for this task, or for every task of "
            "the repository when an approver clicks. /task policy lists and removes the rules.",
            confirm="Always allow", deny="Cancel", style="primary"),
    )


def _style_for(kind: str) -> str | None:
    kind = (kind or "").lower()
    if kind.startswith("allow"):
        return "primary"
    if kind.startswith(("deny", "reject")):
        return "danger"
    return None


def _select_options(intervention_id: int, options: Sequence[Option], first_index: int) -> list[dict]:
    return [
        option(
            one_line(o.label or o.id),
            encode_option_value(intervention_id, o.id, first_index + offset, limit=OPTION_VALUE_MAX),
            one_line(o.description),
        )
        for offset, o in enumerate(options)
    ]


def _selects(intervention: InterventionView, text_budget: int) -> tuple[list[Block], int]:
    """Too many options for buttons: static_selects of 100 options each, in one actions block."""
    iid = intervention.id
    options = _options_within(intervention.options, ACTIONS_MAX_ELEMENTS * SELECT_OPTIONS_MAX, text_budget)
    elements = []
    for group, start in enumerate(range(0, len(options), SELECT_OPTIONS_MAX)):
        chunk = options[start : start + SELECT_OPTIONS_MAX]
        placeholder = "Choose an answer" if len(options) <= SELECT_OPTIONS_MAX else f"Options {start + 1}–{start + len(chunk)}"
        elements.append(
            {
                "type": "static_select",
                "action_id": make_action_id(ActionId.ANSWER_SELECT, iid, group),
                "placeholder": {"type": "plain_text", "text": plain(placeholder, 150)},
                "options": _select_options(iid, chunk, start),
            }
        )
    return [actions(elements, block_id=f"intervention_options:{iid}")], len(intervention.options) - len(options)


def _checkboxes(intervention: InterventionView, text_budget: int) -> tuple[list[Block], int]:
    """Multi-select: groups of checkboxes (10 options each) and a Submit button."""
    iid = intervention.id
    options = _options_within(intervention.options, CHECKBOX_GROUPS_MAX * CHECKBOX_OPTIONS_MAX, text_budget)
    blocks = []
    for group, start in enumerate(range(0, len(options), CHECKBOX_OPTIONS_MAX)):
        element = {
            "type": "checkboxes",
            "action_id": make_action_id(ActionId.ANSWER_CHECKBOXES, iid, group),
            "options": _select_options(iid, options[start : start + CHECKBOX_OPTIONS_MAX], start),
        }
        blocks.append(actions([element], block_id=f"intervention_checks:{iid}:{group}"))
    submit = button("Submit", action_id=make_action_id(ActionId.ANSWER_SUBMIT, iid), value=str(iid), style="primary")
    blocks.append(actions([submit], block_id=f"intervention_submit:{iid}"))
    return blocks, len(intervention.options) - len(options)


def _reply_hint(intervention: InterventionView, left_out: int) -> str:
    if intervention.kind == InterventionKind.PERMISSION:
        hint = "Reply in this thread to deny the request and tell the agent your message."
    elif intervention.options:
        hint = "Pick an answer, or reply in this thread to answer in your own words."
    else:
        hint = "Reply in this thread to answer."
    if left_out:
        hint += f" {left_out} more options did not fit here: reply with the one you want."
    return hint


def _outcome(intervention: InterventionView) -> str:
    status = intervention.status
    if status == InterventionStatus.EXPIRED:
        return "⌛ Nobody answered in time; the request expired."
    if status == InterventionStatus.CANCELLED:
        return "🚫 Cancelled: the task stopped before anyone answered."
    if status == InterventionStatus.PENDING:
        return "⏳ Still waiting for an answer."
    who = user_mention(intervention.answered_by) if intervention.answered_by else "Someone"
    after = ""
    if intervention.resolved_at:
        after = f" after {fmt_elapsed(intervention.created_at, intervention.resolved_at)}"
    chosen = [_chosen_label(intervention.options, option_id) for option_id in intervention.answer_options]
    reply = _quote(intervention.answer_text or "", ANSWER_TEXT_MAX) if (intervention.answer_text or "").strip() else ""
    permission = intervention.kind == InterventionKind.PERMISSION
    # A reply to a permission is a deny with a message (the core fills in the deny option).
    if permission and (not chosen or (reply and _chose_deny(intervention))):
        text = f"🚫 {who} denied it{after} with a message:"
    elif chosen:
        denied = intervention.kind == InterventionKind.PERMISSION and _chose_deny(intervention)
        text = f"{'🚫' if denied else '✅'} {who} chose {', '.join(chosen)}{after}"
    else:
        text = f"✅ {who} answered{after}:"
    return truncate(f"{text}\n{reply}" if reply else text, SECTION_TEXT_MAX)


def _chosen_label(options: Sequence[Option], option_id: str) -> str:
    for choice in options:
        if choice.id == option_id:
            return f"*{safe_text(one_line(choice.label or choice.id), 75)}*"
    return f"*{safe_text(one_line(option_id), 75)}*"


def _chose_deny(intervention: InterventionView) -> bool:
    kinds = {o.id: o.kind for o in intervention.options}
    return any(_style_for(kinds.get(option_id, "")) == "danger" for option_id in intervention.answer_options)


def _fallback(task: TaskView, intervention: InterventionView, mention: str) -> str:
    if intervention.kind == InterventionKind.PERMISSION:
        what = f"the agent wants to use {intervention.tool or 'a tool'}"
    else:
        what = f"the agent asks: {intervention.prompt}"
    text = safe_text(one_line(f"{task.short_id} {task.title} — {what}"), FALLBACK_PROMPT_MAX)
    return f"{mention} {text}"


def answer_controls(intervention: InterventionView, text_budget: int = SECTION_TEXT_MAX) -> list[Block]:
    """The question's answer buttons/selects alone (e.g. for the Home tab); [] when it takes free text."""
    return _controls(intervention, text_budget)[0]
