"""Builders of Slack-shaped payloads: Events API callbacks, slash commands, interactive payloads."""
from __future__ import annotations

import copy
import time
import uuid
from typing import Any

from .state import APP_ID, BOT_USER_ID, TEAM_DOMAIN, TEAM_ID, Channel, random_id

VERIFICATION_TOKEN = "emulator-verification-token"


def team() -> dict:
    return {"id": TEAM_ID, "domain": TEAM_DOMAIN}


def user_ref(user: dict) -> dict:
    return {"id": user["id"], "username": user["name"], "name": user["name"], "team_id": TEAM_ID}


def event_callback(event: dict) -> dict:
    """Wrap an event the way the Events API delivers it (JSON body / events_api envelope payload)."""
    return {
        "token": VERIFICATION_TOKEN, "team_id": TEAM_ID, "context_team_id": TEAM_ID,
        "context_enterprise_id": None, "api_app_id": APP_ID, "event": event,
        "type": "event_callback", "event_id": random_id("Ev", 12), "event_time": int(time.time()),
        "authorizations": [{"enterprise_id": None, "team_id": TEAM_ID, "user_id": BOT_USER_ID,
                            "is_bot": True, "is_enterprise_install": False}],
        "is_ext_shared_channel": False,
        "event_context": "4-" + uuid.uuid4().hex,
    }


def message_event(msg: dict, ch: Channel) -> dict:
    ev = {k: copy.deepcopy(v) for k, v in msg.items() if k not in ("reply_users", "pinned_to")}
    ev.update(channel=ch.id, event_ts=msg["ts"], channel_type=ch.channel_type)
    return ev


def message_changed_event(new: dict, old: dict, ch: Channel) -> dict:
    return {"type": "message", "subtype": "message_changed", "hidden": True, "channel": ch.id,
            "channel_type": ch.channel_type, "ts": new["edited"]["ts"], "event_ts": new["edited"]["ts"],
            "message": copy.deepcopy(new), "previous_message": copy.deepcopy(old)}


def message_deleted_event(old: dict, ch: Channel, ts: str) -> dict:
    return {"type": "message", "subtype": "message_deleted", "hidden": True, "channel": ch.id,
            "channel_type": ch.channel_type, "ts": ts, "event_ts": ts, "deleted_ts": old["ts"],
            "previous_message": copy.deepcopy(old)}


def rich_text(text: str) -> list[dict]:
    """The rich_text block Slack clients attach to what a user types."""
    return [{"type": "rich_text", "block_id": random_id("", 5),
             "elements": [{"type": "rich_text_section", "elements": [{"type": "text", "text": text}]}]}]


def app_home_opened(user: str, view: dict | None) -> dict:
    ev: dict[str, Any] = {"type": "app_home_opened", "user": user, "channel": "D_HOME_" + user, "tab": "home",
          "event_ts": f"{time.time():.6f}"}
    if view is not None:
        ev["view"] = copy.deepcopy(view)
    return ev


def slash_command(user: dict, ch: Channel, command: str, text: str,
                  response_url: str, trigger_id: str) -> dict:
    """Fields of a slash command request (form-encoded over HTTP, a dict in Socket Mode)."""
    return {
        "token": VERIFICATION_TOKEN, "team_id": TEAM_ID, "team_domain": TEAM_DOMAIN,
        "channel_id": ch.id, "channel_name": "directmessage" if ch.is_im else ch.name,
        "user_id": user["id"], "user_name": user["name"], "command": command, "text": text,
        "api_app_id": APP_ID, "is_enterprise_install": "false",
        "response_url": response_url, "trigger_id": trigger_id,
    }


def _interactive(kind: str, user: dict, trigger_id: str) -> dict:
    return {"type": kind, "user": user_ref(user), "api_app_id": APP_ID, "token": VERIFICATION_TOKEN,
            "trigger_id": trigger_id, "team": team(), "enterprise": None, "is_enterprise_install": False}


def action(block: dict, element: dict, value: str | None) -> dict:
    act = {"action_id": element.get("action_id"), "block_id": block.get("block_id"),
           "type": element.get("type"), "action_ts": f"{time.time():.6f}"}
    if element.get("type") == "button":
        act["text"] = copy.deepcopy(element.get("text"))
        if element.get("value") is not None:
            act["value"] = element["value"]
        if element.get("style"):
            act["style"] = element["style"]
    elif element.get("type") == "overflow" or element.get("type", "").endswith("static_select"):
        opt = next((o for o in element.get("options") or [] if o.get("value") == value), None)
        if opt is None:
            raise AssertionError(f"{element.get('action_id')!r} has no option with value {value!r}")
        act["selected_option"] = copy.deepcopy(opt)
    elif value is not None:
        act["value"] = value
    return act


def block_actions_on_message(user: dict, ch: Channel, msg: dict, act: dict, trigger_id: str,
                             response_url: str, ephemeral: bool = False) -> dict:
    p = _interactive("block_actions", user, trigger_id)
    container = {"type": "message", "message_ts": msg["ts"], "channel_id": ch.id, "is_ephemeral": ephemeral}
    if msg.get("thread_ts"):
        container["thread_ts"] = msg["thread_ts"]
    p.update(container=container, channel={"id": ch.id, "name": ch.name}, state={"values": {}},
             response_url=response_url, actions=[act])
    if not ephemeral:
        p["message"] = copy.deepcopy(msg)
    return p


def block_actions_on_view(user: dict, view: dict, act: dict, trigger_id: str) -> dict:
    p = _interactive("block_actions", user, trigger_id)
    p.update(container={"type": "view", "view_id": view["id"]}, view=copy.deepcopy(view),
             actions=[act], state=copy.deepcopy(view.get("state", {"values": {}})))
    return p


def view_submission(user: dict, view: dict, trigger_id: str) -> dict:
    p = _interactive("view_submission", user, trigger_id)
    p.update(view=copy.deepcopy(view), response_urls=[])
    return p


def view_closed(user: dict, view: dict) -> dict:
    p = _interactive("view_closed", user, "")
    p.pop("trigger_id")
    p.update(view=copy.deepcopy(view), is_cleared=False)
    return p


def message_shortcut(user: dict, ch: Channel, msg: dict, callback_id: str, trigger_id: str,
                     response_url: str) -> dict:
    p = _interactive("message_action", user, trigger_id)
    p.update(callback_id=callback_id, action_ts=f"{time.time():.6f}", message_ts=msg["ts"],
             channel={"id": ch.id, "name": ch.name}, message=copy.deepcopy(msg), response_url=response_url)
    return p


def global_shortcut(user: dict, callback_id: str, trigger_id: str) -> dict:
    p = _interactive("shortcut", user, trigger_id)
    p.update(callback_id=callback_id, action_ts=f"{time.time():.6f}")
    return p


def state_value(element: dict, value) -> dict:
    """One entry of view.state.values for an input element, from a test-friendly value."""
    etype = element.get("type", "")
    out: dict = {"type": etype}

    def find(v):
        for opt in element.get("options") or [o for g in element.get("option_groups") or []
                                               for o in g.get("options", [])]:
            if opt.get("value") == v:
                return copy.deepcopy(opt)
        raise ValueError(f"{etype} {element.get('action_id')!r} has no option with value {v!r}")

    if etype in ("static_select", "radio_buttons", "external_select"):
        out["selected_option"] = None if value is None else (
            value if isinstance(value, dict) else find(value))
    elif etype in ("multi_static_select", "checkboxes", "multi_external_select"):
        out["selected_options"] = [o if isinstance(o, dict) else find(o) for o in (value or [])]
    elif etype == "users_select":
        out["selected_user"] = value
    elif etype == "multi_users_select":
        out["selected_users"] = list(value or [])
    elif etype == "conversations_select":
        out["selected_conversation"] = value
    elif etype == "multi_conversations_select":
        out["selected_conversations"] = list(value or [])
    elif etype == "channels_select":
        out["selected_channel"] = value
    elif etype == "multi_channels_select":
        out["selected_channels"] = list(value or [])
    elif etype == "datepicker":
        out["selected_date"] = value
    elif etype == "timepicker":
        out["selected_time"] = value
    elif etype == "datetimepicker":
        out["selected_date_time"] = value
    else:
        out["value"] = value
    return out


def initial_value(element: dict):
    """What an untouched input holds (its initial_* field), in the test-friendly value form."""
    for key in ("initial_value", "initial_option", "initial_options", "initial_user", "initial_users",
                "initial_conversation", "initial_conversations", "initial_channel", "initial_channels",
                "initial_date", "initial_time", "initial_date_time"):
        if key in element:
            return element[key]
    return None
