"""Slack Block Kit renderers: pure functions from core views to Block Kit dicts.

Nothing here calls Slack. Every message renderer returns ``{"text", "blocks"}`` and every
view renderer a view dict; :mod:`bot.blocks.limits` checks them against Slack's limits.
"""
from .board import render_board
from .card import render_card, render_card_compact
from .home import render_home
from .intervention import render_intervention, render_intervention_reminder, render_intervention_resolved
from .limits import validate_message, validate_view
from .modals import create_task_modal, modal_values, request_changes_modal
from .thread import (
    dispatch_message,
    ephemeral_text,
    milestone_message,
    output_summary_message,
    result_message,
    review_message,
)

__all__ = [
    "create_task_modal",
    "dispatch_message",
    "ephemeral_text",
    "milestone_message",
    "modal_values",
    "output_summary_message",
    "render_board",
    "render_card",
    "render_card_compact",
    "render_home",
    "render_intervention",
    "render_intervention_reminder",
    "render_intervention_resolved",
    "request_changes_modal",
    "result_message",
    "review_message",
    "validate_message",
    "validate_view",
]
