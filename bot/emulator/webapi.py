"""Web API: request parsing, auth, rate limits, the call log, and the chat/pins/conversations methods."""
from __future__ import annotations

import json
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from aiohttp import web

from . import blockkit
from .state import APP_ID, BOT_ID, BOT_USER_ID, TEAM_DOMAIN, TEAM_ID, Channel

if TYPE_CHECKING:
    from .server import SlackEmulator

METHODS: dict[str, Callable[["SlackEmulator", dict], dict]] = {}
APP_TOKEN_METHODS = {"apps.connections.open"}
JSON_PARAMS = ("blocks", "attachments", "view", "metadata")


class ApiError(Exception):
    def __init__(self, error: str, **extra: Any) -> None:
        super().__init__(error)
        self.error, self.extra = error, extra


@dataclass
class CallRecord:
    method: str
    time: float            # time.monotonic()
    http_status: int
    ok: bool
    error: str | None
    params: dict
    token: str | None


def api(name: str):
    def register(fn):
        METHODS[name] = fn
        return fn
    return register


async def parse_params(request: web.Request) -> dict:
    params: dict[str, Any] = dict(request.query)
    if request.method == "POST" and request.can_read_body:
        if request.content_type == "application/json":
            body = await request.json()
            params.update(body if isinstance(body, dict) else {})
        else:
            params.update(dict(await request.post()))
    for key in JSON_PARAMS:
        if isinstance(params.get(key), str) and params[key].strip()[:1] in ("[", "{"):
            try:
                params[key] = json.loads(params[key])
            except ValueError:
                raise ApiError("invalid_arguments") from None
    return params


async def handle(emu: "SlackEmulator", request: web.Request) -> web.Response:
    method = request.match_info["method"]
    params: dict = {}
    token = None
    status, headers = 200, {}
    try:
        params = await parse_params(request)
        auth = request.headers.get("Authorization", "")
        token = auth[7:].strip() if auth.startswith("Bearer ") else params.pop("token", None)
        params.pop("token", None)
        body = dispatch(emu, method, params, token)
        headers.update(emu.tokens.headers(token))
    except ApiError as e:
        extra = dict(e.extra)
        if e.error == "ratelimited":
            status, headers = 429, {"Retry-After": str(extra.pop("retry_after"))}
        body = {"ok": False, "error": e.error, **extra}
    emu.calls.append(CallRecord(method, time.monotonic(), status, body["ok"], body.get("error"),
                                params, token))
    return web.json_response(body, status=status, headers=headers)


def dispatch(emu: "SlackEmulator", method: str, params: dict, token: str | None) -> dict:
    if method not in METHODS:
        raise ApiError("unknown_method")
    if not token:
        raise ApiError("not_authed")
    refused = emu.tokens.error_for(token)
    if refused:
        raise ApiError(refused)
    if token not in (emu.bot_token, emu.app_token):
        raise ApiError("invalid_auth")
    if (token == emu.app_token) != (method in APP_TOKEN_METHODS):
        raise ApiError("not_allowed_token_type")
    ch = emu.ws.channel(params.get("channel")) if isinstance(params.get("channel"), str) else None
    retry_after = emu.limiter.check(method, token, ch.id if ch else params.get("channel"))
    if retry_after is not None:
        raise ApiError("ratelimited", retry_after=retry_after)
    missing = emu.tokens.missing_scope(method, token, ch.channel_type if ch else None)
    if missing:
        raise ApiError("missing_scope", **missing)
    return {"ok": True, **METHODS[method](emu, params)}


# --- helpers ------------------------------------------------------------------
def need(params: dict, *keys: str) -> None:
    for k in keys:
        if params.get(k) in (None, ""):
            raise ApiError("invalid_arguments", response_metadata={
                "messages": [f"[ERROR] missing required field: {k}"]})


def channel_of(emu: "SlackEmulator", params: dict, key: str = "channel") -> Channel:
    need(params, key)
    ch = emu.ws.channel(params[key])
    if ch is None:
        raise ApiError("channel_not_found")
    return ch


def message_of(ch: Channel, ts: Any) -> dict:
    msg = ch.msgs.get(str(ts)) if ts else None
    if msg is None:
        raise ApiError("message_not_found")
    return msg


def check_content(params: dict, *, required: bool = True) -> dict:
    """Validate text/blocks; return the fields to store."""
    text, blocks = params.get("text"), params.get("blocks")
    if required and not text and not blocks and not params.get("attachments"):
        raise ApiError("no_text")
    if isinstance(text, str) and len(text) > blockkit.MAX_TEXT:
        raise ApiError("msg_too_long")
    if blocks is not None:
        errors = blockkit.validate_blocks(blocks, "message")
        if errors:
            raise ApiError("invalid_blocks", errors=errors,
                           response_metadata={"messages": [f"[ERROR] {e}" for e in errors]})
    return {k: params[k] for k in ("text", "blocks", "attachments", "metadata") if k in params}


def bot_fields() -> dict:
    return {"user": BOT_USER_ID, "bot_id": BOT_ID, "app_id": APP_ID,
            "bot_profile": {"id": BOT_ID, "app_id": APP_ID, "name": "taskpin", "team_id": TEAM_ID}}


def public(msg: dict) -> dict:
    return json.loads(json.dumps(msg))


def listed(msg: dict, params: dict) -> dict:
    """A message as conversations.history/replies list it: metadata only with include_all_metadata."""
    out = public(msg)
    if str(params.get("include_all_metadata", "")).lower() not in ("1", "true"):
        out.pop("metadata", None)
    return out


def check_metadata(params: dict) -> None:
    meta = params.get("metadata")
    if meta is None:
        return
    if not isinstance(meta, dict) or not isinstance(meta.get("event_type"), str) or \
            not isinstance(meta.get("event_payload"), dict):
        raise ApiError("invalid_metadata_format")


# --- methods --------------------------------------------------------------------
@api("auth.test")
def auth_test(emu, params):
    return {"url": f"https://{TEAM_DOMAIN}.slack.com/", "team": "taskpin emulator", "user": "taskpin",
            "team_id": TEAM_ID, "user_id": BOT_USER_ID, "bot_id": BOT_ID, "is_enterprise_install": False}


@api("apps.connections.open")
def apps_connections_open(emu, params):
    return {"url": emu.dispatcher.socket.issue_url(emu.ws_url)}


@api("chat.postMessage")
def chat_post_message(emu, params):
    ch = channel_of(emu, params)
    if BOT_USER_ID not in ch.members:
        raise ApiError("not_in_channel")
    content = check_content(params)
    check_metadata(params)
    thread_ts = params.get("thread_ts") or None
    if thread_ts:
        thread_ts = emu.ws.thread_root(ch, str(thread_ts))
        if thread_ts is None:
            raise ApiError("thread_not_found")
    msg = emu.post_as_bot(ch, content, thread_ts)
    return {"channel": ch.id, "ts": msg["ts"], "message": public(msg)}


@api("chat.update")
def chat_update(emu, params):
    ch = channel_of(emu, params)
    msg = message_of(ch, params.get("ts"))
    if msg.get("user") != BOT_USER_ID:
        raise ApiError("cant_update_message")
    changes = check_content(params, required=False)
    if not changes:
        raise ApiError("no_text")
    old = public(msg)
    emu.ws.update_message(ch, msg["ts"], changes, BOT_USER_ID)
    emu.emit_message_changed(ch, msg, old)
    return {"channel": ch.id, "ts": msg["ts"], "text": msg.get("text", ""), "message": public(msg)}


@api("chat.delete")
def chat_delete(emu, params):
    ch = channel_of(emu, params)
    msg = message_of(ch, params.get("ts"))
    if msg.get("user") != BOT_USER_ID:
        raise ApiError("cant_delete_message")
    old = emu.ws.delete_message(ch, msg["ts"])
    emu.emit_message_deleted(ch, old)
    return {"channel": ch.id, "ts": old["ts"]}


@api("chat.postEphemeral")
def chat_post_ephemeral(emu, params):
    ch = channel_of(emu, params)
    need(params, "user")
    if params["user"] not in emu.ws.users:
        raise ApiError("user_not_found")
    if params["user"] not in ch.members:
        raise ApiError("user_not_in_channel")
    content = check_content(params)
    eph = emu.add_ephemeral(ch, params["user"], content, "chat.postEphemeral", params.get("thread_ts"))
    return {"message_ts": eph["ts"]}


@api("chat.getPermalink")
def chat_get_permalink(emu, params):
    ch = channel_of(emu, params)
    msg = message_of(ch, params.get("message_ts"))
    return {"channel": ch.id, "permalink": emu.permalink(ch, msg)}


@api("pins.add")
def pins_add(emu, params):
    ch = channel_of(emu, params)
    msg = message_of(ch, params.get("timestamp"))
    if any(p["ts"] == msg["ts"] for p in ch.pins):
        raise ApiError("already_pinned")
    ch.pins.append({"ts": msg["ts"], "created": int(time.time()), "created_by": BOT_USER_ID})
    msg.setdefault("pinned_to", []).append(ch.id)
    return {}


@api("pins.remove")
def pins_remove(emu, params):
    ch = channel_of(emu, params)
    msg = message_of(ch, params.get("timestamp"))
    if not any(p["ts"] == msg["ts"] for p in ch.pins):
        raise ApiError("no_pin")
    ch.pins = [p for p in ch.pins if p["ts"] != msg["ts"]]
    msg["pinned_to"] = [c for c in msg.get("pinned_to", []) if c != ch.id]
    if not msg["pinned_to"]:
        msg.pop("pinned_to")
    return {}


@api("pins.list")
def pins_list(emu, params):
    ch = channel_of(emu, params)
    items = [{"type": "message", "created": p["created"], "created_by": p["created_by"], "channel": ch.id,
              "message": {**public(ch.msgs[p["ts"]]), "permalink": emu.permalink(ch, ch.msgs[p["ts"]])}}
             for p in reversed(ch.pins)]
    return {"items": items}


def _page(items: list, params: dict) -> tuple[list, dict]:
    limit = int(params.get("limit") or 100)
    start = int(params.get("cursor") or 0)
    page = items[start:start + limit]
    more = start + limit < len(items)
    return page, {"has_more": more, "response_metadata": {"next_cursor": str(start + limit) if more else ""}}


def _in_range(ts: str, params: dict) -> bool:
    inclusive = str(params.get("inclusive", "")).lower() in ("1", "true")
    oldest, latest = params.get("oldest"), params.get("latest")
    if oldest and (float(ts) < float(oldest) or (float(ts) == float(oldest) and not inclusive)):
        return False
    if latest and (float(ts) > float(latest) or (float(ts) == float(latest) and not inclusive)):
        return False
    return True


@api("conversations.history")
def conversations_history(emu, params):
    ch = channel_of(emu, params)
    if BOT_USER_ID not in ch.members:
        raise ApiError("not_in_channel")
    msgs = [listed(ch.msgs[ts], params) for ts in reversed(ch.top) if _in_range(ts, params)]
    page, meta = _page(msgs, params)
    return {"messages": page, **meta}


@api("conversations.replies")
def conversations_replies(emu, params):
    ch = channel_of(emu, params)
    need(params, "ts")
    root = emu.ws.thread_root(ch, str(params["ts"]))
    if root is None:
        raise ApiError("thread_not_found")
    tss = [root] + ch.replies.get(root, [])
    msgs = [listed(ch.msgs[ts], params) for ts in tss if ts == root or _in_range(ts, params)]
    page, meta = _page(msgs, params)
    return {"messages": page, **meta}


@api("conversations.info")
def conversations_info(emu, params):
    ch = channel_of(emu, params)
    if ch.is_private and BOT_USER_ID not in ch.members:
        raise ApiError("channel_not_found")      # Slack hides private channels from non-members
    return {"channel": ch.info()}


@api("conversations.open")
def conversations_open(emu, params):
    need(params, "users")
    uid = str(params["users"]).split(",")[0]
    if uid not in emu.ws.users:
        raise ApiError("user_not_found")
    return {"channel": {"id": emu.ws.im_with(uid).id}}


@api("users.info")
def users_info(emu, params):
    need(params, "user")
    user = emu.ws.users.get(params["user"])
    if user is None:
        raise ApiError("user_not_found")
    return {"user": user}
