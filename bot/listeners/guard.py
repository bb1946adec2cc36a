"""Refuse payloads not shaped like Slack's before any listener sees them.

Listeners read `body["user"]["id"]`, `action["value"]`, `view["state"]["values"]`... A payload
without them (or with a null, a number, a list in their place) is acked and dropped here with
one log line: no traceback, and never a Web API call for nobody. Slack itself always sends
these fields, so only a forged or broken delivery is refused.
"""
from __future__ import annotations

from collections.abc import Mapping
from typing import Any

MAX_ID_LEN = 64
MAX_TRIGGER_LEN = 255
INTERACTIVE_WITH_TRIGGER = {"block_actions", "shortcut", "message_action"}
INTERACTIVE = INTERACTIVE_WITH_TRIGGER | {"view_submission", "view_closed", "block_suggestion",
                                          "interactive_message", "dialog_submission"}
OTHER_KNOWN_TYPES = {"url_verification", "app_rate_limited"}   # bolt answers these itself
EVENT_STRING_FIELDS = ("type", "subtype", "user", "channel", "text", "ts", "thread_ts", "bot_id", "tab",
                       "deleted_ts", "event_ts", "channel_id")


def _is_id(value: Any, longest: int = MAX_ID_LEN) -> bool:
    return isinstance(value, str) and 0 < len(value) <= longest and not any(c.isspace() for c in value)


def _optional_str(obj: Mapping, *keys: str) -> str | None:
    for key in keys:
        if obj.get(key) is not None and not isinstance(obj.get(key), str):
            return f"{key} is not a string"
    return None


def _options_ok(options: Any) -> bool:
    return isinstance(options, list) and all(isinstance(o, dict) and isinstance(o.get("value"), str) for o in options)


def _state_ok(state: Any) -> bool:
    """state.values: {block_id: {action_id: {value | selected_option | selected_options}}}."""
    if state is None:
        return True
    values = state.get("values") if isinstance(state, dict) else None
    if not isinstance(values, dict):
        return False
    for block in values.values():
        if not isinstance(block, dict):
            return False
        for element in block.values():
            if not isinstance(element, dict) or _optional_str(element, "value", "type"):
                return False
            chosen = element.get("selected_option")
            if chosen is not None and not (isinstance(chosen, dict) and isinstance(chosen.get("value"), str)):
                return False
            if element.get("selected_options") is not None and not _options_ok(element["selected_options"]):
                return False
    return True


def _action_problem(action: Any) -> str | None:
    if not isinstance(action, dict) or not isinstance(action.get("action_id"), str):
        return "an action has no action_id"
    if _optional_str(action, "value", "block_id", "type"):
        return "an action's value is not a string"
    chosen = action.get("selected_option")
    if chosen is not None and not (isinstance(chosen, dict) and isinstance(chosen.get("value"), str)):
        return "an action's selected option has no value"
    if action.get("selected_options") is not None and not _options_ok(action["selected_options"]):
        return "an action's selected options have no values"
    return None


def _interactive_problem(body: Mapping) -> str | None:
    kind = body.get("type")
    user = body.get("user")
    if not isinstance(user, dict) or not _is_id(user.get("id")):
        return "no user"
    if kind in INTERACTIVE_WITH_TRIGGER and not _is_id(body.get("trigger_id"), MAX_TRIGGER_LEN):
        return "no trigger_id"
    if kind == "block_actions":
        actions = body.get("actions")
        if not isinstance(actions, list) or not actions:
            return "no actions"
        problem = next(filter(None, (_action_problem(a) for a in actions)), None)
        if problem:
            return problem
        if not _state_ok(body.get("state")):
            return "malformed state"
        if body.get("view") is not None and not isinstance(body.get("view"), dict):
            return "malformed view"
    if kind in ("view_submission", "view_closed"):
        view = body.get("view")
        if not isinstance(view, dict) or not isinstance(view.get("callback_id"), str) or not isinstance(
                view.get("type"), str):
            return "no view"
        if _optional_str(view, "private_metadata", "id") or not _state_ok(view.get("state")):
            return "malformed view"
    if kind in ("shortcut", "message_action") and not isinstance(body.get("callback_id"), str):
        return "no callback_id"
    message = body.get("message")
    if kind == "message_action" and not isinstance(message, dict):
        return "no message"
    if message is not None and (not isinstance(message, dict) or _optional_str(message, "text", "ts")):
        return "malformed message"
    for key in ("channel", "container", "team"):
        if body.get(key) is not None and not isinstance(body.get(key), dict):
            return f"malformed {key}"
    if _optional_str(body, "response_url", "trigger_id"):
        return "malformed response_url"
    return None


def _event_problem(body: Mapping) -> str | None:
    event = body.get("event")
    if not isinstance(event, dict) or not isinstance(event.get("type"), str):
        return "no event"
    if _optional_str(body, "event_id", "team_id") or _optional_str(event, *EVENT_STRING_FIELDS):
        return "malformed event"
    for key in ("item", "previous_message", "message", "view"):
        if event.get(key) is not None and not isinstance(event.get(key), dict):
            return f"malformed event {key}"
    if event["type"] == "app_home_opened" and not _is_id(event.get("user")):
        return "no user"
    return None


# What bolt itself reads to route a request and build its context (slack_bolt.request.internals):
# these must have Slack's shapes before bolt sees the request, in the body and in the nested
# objects bolt looks into.
_REFS = ("enterprise", "team", "user", "channel")                         # an id, or an object with one
_OBJECTS = ("view", "event", "message", "previous_message", "item", "assistant_thread", "function_data",
            "container", "state")
_ID_STRINGS = ("team_id", "enterprise_id", "user_id", "channel_id", "thread_ts", "context_team_id",
               "context_enterprise_id", "api_app_id", "function_execution_id", "bot_access_token", "type",
               "callback_id", "event_id", "trigger_id", "response_url")
_NESTED = ("event", "message", "previous_message", "item", "assistant_thread")


def _routing_problem(obj: Mapping, depth: int = 0) -> str | None:
    for key in _REFS:
        ref = obj.get(key)
        if ref is not None and not isinstance(ref, str) and not (
                isinstance(ref, dict) and _optional_str(ref, "id", "team_id", "enterprise_id") is None):
            return f"malformed {key}"
    for key in _OBJECTS:
        if obj.get(key) is not None and not isinstance(obj.get(key), dict):
            return f"malformed {key}"
    if _optional_str(obj, *_ID_STRINGS):
        return _optional_str(obj, *_ID_STRINGS)
    if obj.get("is_enterprise_install") is not None and not isinstance(obj["is_enterprise_install"], (bool, str)):
        return "malformed is_enterprise_install"
    for key in ("authorizations", "response_urls"):
        items = obj.get(key)
        if items is not None and not (isinstance(items, list) and all(isinstance(i, dict) for i in items)):
            return f"malformed {key}"
    nested = [obj[k] for k in _NESTED if isinstance(obj.get(k), dict)] + list(obj.get("authorizations") or [])[:1]
    if depth < 3:
        return next(filter(None, (_routing_problem(n, depth + 1) for n in nested)), None)
    return None


def problem_with(body: Any) -> str | None:
    """Why this delivery cannot be handled, or None when it has the fields listeners read."""
    if not isinstance(body, dict):
        return "not an object"
    routing = _routing_problem(body)
    if routing:
        return routing
    if "command" in body:   # a slash command (form fields)
        if not (isinstance(body["command"], str) and body["command"].startswith("/")):
            return "no command"
        if not _is_id(body.get("user_id")):
            return "no user"
        if not _is_id(body.get("trigger_id"), MAX_TRIGGER_LEN):
            return "no trigger_id"
        if not (isinstance(body.get("response_url"), str) and body["response_url"].startswith(("https://", "http://"))):
            return "no response_url"   # listeners answer commands through it
        return _optional_str(body, "text", "channel_id")
    kind = body.get("type")
    if not isinstance(kind, str):
        return "no payload type"
    if kind in INTERACTIVE:
        return _interactive_problem(body)
    if kind == "event_callback":
        return _event_problem(body)
    if kind not in OTHER_KNOWN_TYPES:
        return f"unknown payload type {str(kind)[:40]!r}"
    return None
