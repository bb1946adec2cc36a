"""views.open / push / update / publish: modals (a stack per user) and the Home tab."""
from __future__ import annotations

import copy
import secrets
import time

from . import blockkit
from .state import APP_ID, BOT_ID, TEAM_ID, Workspace, random_id
from .webapi import ApiError, api, need

MAX_STACK = 3


def _check(view) -> dict:
    if not isinstance(view, dict):
        raise ApiError("invalid_arguments", response_metadata={"messages": ["[ERROR] must provide an object [json-pointer:/view]"]})
    errors = blockkit.validate_view(view)
    if errors:
        raise ApiError("invalid_arguments", errors=errors,
                       response_metadata={"messages": [f"[ERROR] {e}" for e in errors]})
    return view


def _new_hash() -> str:
    return f"{time.time():.6f}.{secrets.token_hex(4)}"


def build_view(ws: Workspace, view: dict, *, view_id: str | None = None, root: str | None = None,
               previous: str | None = None, user: str | None = None) -> dict:
    vid = view_id or random_id("V", 10)
    full = {
        "id": vid, "team_id": TEAM_ID, "type": view["type"], "blocks": [], "private_metadata": "",
        "callback_id": "", "external_id": "", "state": {"values": {}}, "hash": _new_hash(),
        "title": None, "close": None, "submit": None, "clear_on_close": False, "notify_on_close": False,
        "previous_view_id": previous, "root_view_id": root or vid, "app_id": APP_ID,
        "app_installed_team_id": TEAM_ID, "bot_id": BOT_ID,
    }
    full.update(copy.deepcopy(view))
    full["id"] = vid
    if user:
        ws.view_owner[vid] = user
    ws.views[vid] = full
    return full


def find_view(ws: Workspace, params: dict) -> dict:
    vid = params.get("view_id")
    if not vid and params.get("external_id"):
        vid = next((v["id"] for v in ws.views.values() if v.get("external_id") == params["external_id"]), None)
    view = ws.views.get(vid) if vid else None
    if view is None:
        raise ApiError("not_found")
    return view


def _trigger_user(emu, params) -> str:
    need(params, "trigger_id", "view")
    _check(params["view"])
    error = emu.ws.consume_trigger(params["trigger_id"], emu.trigger_ttl)
    if error:
        raise ApiError(error)
    return emu.ws.triggers[params["trigger_id"]][1]


@api("views.open")
def views_open(emu, params):
    user = _trigger_user(emu, params)
    if params["view"].get("type") != "modal":
        raise ApiError("invalid_arguments")
    view = build_view(emu.ws, params["view"], user=user)
    emu.ws.modal_stacks[user] = [view["id"]]
    return {"view": copy.deepcopy(view)}


@api("views.push")
def views_push(emu, params):
    user = _trigger_user(emu, params)
    stack = emu.ws.modal_stacks.get(user) or []
    if not stack:
        raise ApiError("not_found")
    if len(stack) >= MAX_STACK:
        raise ApiError("push_limit_reached")
    view = build_view(emu.ws, params["view"], root=stack[0], previous=stack[-1], user=user)
    stack.append(view["id"])
    return {"view": copy.deepcopy(view)}


@api("views.update")
def views_update(emu, params):
    need(params, "view")
    old = find_view(emu.ws, params)
    if params.get("hash") and params["hash"] != old["hash"]:
        raise ApiError("hash_conflict")
    new = _check(params["view"])
    view = replace_view(emu.ws, old, new)
    return {"view": copy.deepcopy(view)}


def replace_view(ws: Workspace, old: dict, new: dict) -> dict:
    keep = {k: old[k] for k in ("id", "root_view_id", "previous_view_id")}
    view = build_view(ws, new, view_id=old["id"])
    view.update(keep)
    return view


@api("views.publish")
def views_publish(emu, params):
    need(params, "user_id", "view")
    user = params["user_id"]
    if user not in emu.ws.users:
        raise ApiError("user_not_found")
    view = _check(params["view"])
    if view.get("type") != "home":
        raise ApiError("invalid_arguments")
    old_id = emu.ws.home_views.get(user)
    if old_id and params.get("hash") and params["hash"] != emu.ws.views[old_id]["hash"]:
        raise ApiError("hash_conflict")
    full = build_view(emu.ws, view, view_id=old_id, user=user)
    emu.ws.home_views[user] = full["id"]
    return {"view": copy.deepcopy(full)}
