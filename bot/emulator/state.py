"""Workspace state: users, channels, messages, threads, pins, ephemerals, views, triggers."""
from __future__ import annotations

import copy
import secrets
import string
import time
from dataclasses import dataclass, field
from typing import Any

TEAM_ID = "T_EMU"
TEAM_DOMAIN = "taskpin-emu"
APP_ID = "A_TASKPIN"
BOT_ID = "B_TASKPIN"
BOT_USER_ID = "U_BOT"

DEFAULT_USERS = {"U_OWNER": "alice", "U_OTHER": "bob", "U_APPROVER": "carol"}
DEFAULT_CHANNELS = {"C_BOARD": "taskpin"}


def random_id(prefix: str, n: int = 10) -> str:
    alphabet = string.ascii_uppercase + string.digits
    return prefix + "".join(secrets.choice(alphabet) for _ in range(n))


class TsClock:
    """Slack-style message timestamps ("1700000000.000100"), strictly increasing."""

    def __init__(self) -> None:
        self._last = 0

    def next(self) -> str:
        us = max(int(time.time() * 1_000_000), self._last + 1)
        self._last = us
        return f"{us // 1_000_000}.{us % 1_000_000:06d}"


def user_object(uid: str, name: str, **profile: Any) -> dict:
    real = profile.pop("real_name", name.capitalize())
    return {
        "id": uid, "team_id": TEAM_ID, "name": name, "real_name": real, "deleted": False,
        "is_bot": profile.pop("is_bot", False), "is_admin": False, "tz": "UTC",
        "profile": {"display_name": name, "real_name": real, **profile},
    }


@dataclass
class Channel:
    id: str
    name: str
    is_private: bool = False
    is_im: bool = False
    im_user: str | None = None
    members: set[str] = field(default_factory=set)
    top: list[str] = field(default_factory=list)              # top-level ts, in order
    msgs: dict[str, dict] = field(default_factory=dict)        # ts -> message (incl. replies)
    replies: dict[str, list[str]] = field(default_factory=dict)  # thread_ts -> reply ts
    pins: list[dict] = field(default_factory=list)             # {ts, created, created_by}

    @property
    def channel_type(self) -> str:
        return "im" if self.is_im else ("group" if self.is_private else "channel")

    def info(self) -> dict:
        d = {"id": self.id, "name": self.name, "is_channel": not (self.is_im or self.is_private),
             "is_group": self.is_private, "is_im": self.is_im, "is_private": self.is_private or self.is_im,
             "is_member": BOT_USER_ID in self.members, "is_archived": False}
        if self.is_im:
            d["user"] = self.im_user
        return d


class Workspace:
    """Everything a Slack workspace stores that the emulator needs."""

    def __init__(self, users: dict | list | None = None, channels: dict | list | None = None) -> None:
        self.clock = TsClock()
        self.users: dict[str, dict] = {}
        self.channels: dict[str, Channel] = {}
        self.ephemerals: list[dict] = []
        self.edit_history: dict[tuple[str, str], list[dict]] = {}
        self.views: dict[str, dict] = {}                 # view_id -> view
        self.modal_stacks: dict[str, list[str]] = {}     # user -> [view_id], root first
        self.home_views: dict[str, str] = {}             # user -> view_id
        self.view_owner: dict[str, str] = {}             # view_id -> user
        self.triggers: dict[str, tuple[float, str]] = {}  # trigger_id -> (issued, user)
        self.used_triggers: set[str] = set()
        self.add_user(BOT_USER_ID, "taskpin", is_bot=True)
        for uid, name in _pairs(users, DEFAULT_USERS):
            self.add_user(uid, name)
        for cid, name in _pairs(channels, DEFAULT_CHANNELS):
            self.add_channel(cid, name)

    # --- users & channels -------------------------------------------------
    def add_user(self, uid: str, name: str, **profile: Any) -> dict:
        self.users[uid] = user_object(uid, name, **profile)
        for ch in self.channels.values():
            if not ch.is_private and not ch.is_im:
                ch.members.add(uid)
        return self.users[uid]

    def add_channel(self, cid: str, name: str, *, members: list[str] | None = None,
                    is_private: bool = False, bot_member: bool = True) -> Channel:
        name = name.lstrip("#")
        mem = set(members) if members is not None else {u for u in self.users if u != BOT_USER_ID}
        if bot_member:
            mem.add(BOT_USER_ID)
        else:
            mem.discard(BOT_USER_ID)
        ch = Channel(cid, name, is_private=is_private, members=mem)
        self.channels[cid] = ch
        return ch

    def im_with(self, uid: str) -> Channel:
        for ch in self.channels.values():
            if ch.is_im and ch.im_user == uid:
                return ch
        cid = "D_" + uid.removeprefix("U_").removeprefix("U")
        ch = Channel(cid, cid, is_im=True, im_user=uid, members={uid, BOT_USER_ID})
        self.channels[cid] = ch
        return ch

    def channel(self, ref: str | None) -> Channel | None:
        """Resolve a channel id, "#name", "name", or a user id (the bot's DM with that user)."""
        if not ref:
            return None
        if ref in self.channels:
            return self.channels[ref]
        if ref in self.users and ref != BOT_USER_ID:
            return self.im_with(ref)
        name = ref.lstrip("#")
        return next((c for c in self.channels.values() if c.name == name), None)

    def require_channel(self, ref: str) -> Channel:
        ch = self.channel(ref)
        if ch is None:
            raise KeyError(f"no channel {ref!r} in the emulated workspace")
        return ch

    # --- messages -----------------------------------------------------------
    def add_message(self, ch: Channel, msg: dict, thread_ts: str | None = None) -> dict:
        ts = self.clock.next()
        msg = {"type": "message", **msg, "ts": ts, "team": TEAM_ID}
        if thread_ts:
            parent = ch.msgs[thread_ts]
            msg["thread_ts"] = thread_ts
            msg["parent_user_id"] = parent.get("user")
            ch.replies.setdefault(thread_ts, []).append(ts)
            author = msg.get("user")
            parent["thread_ts"] = thread_ts
            parent["reply_count"] = len(ch.replies[thread_ts])
            users = parent.setdefault("reply_users", [])
            if author and author not in users:
                users.append(author)
            parent["reply_users_count"] = len(users)
            parent["latest_reply"] = ts
        else:
            ch.top.append(ts)
        ch.msgs[ts] = msg
        return msg

    def thread_root(self, ch: Channel, ts: str) -> str | None:
        """The ts of the thread a reply should go to (Slack accepts a reply's ts too)."""
        msg = ch.msgs.get(ts)
        return None if msg is None else (msg.get("thread_ts") or ts)

    def update_message(self, ch: Channel, ts: str, changes: dict, editor: str) -> dict:
        msg = ch.msgs[ts]
        self.edit_history.setdefault((ch.id, ts), []).append(copy.deepcopy(msg))
        for key in ("text", "blocks", "attachments", "metadata"):
            if key in changes:
                if changes[key] is None:
                    msg.pop(key, None)
                else:
                    msg[key] = changes[key]
        msg["edited"] = {"user": editor, "ts": self.clock.next()}
        return msg

    def delete_message(self, ch: Channel, ts: str) -> dict:
        msg = ch.msgs.pop(ts)
        if ts in ch.top:
            ch.top.remove(ts)
            for rts in ch.replies.pop(ts, []):
                ch.msgs.pop(rts, None)
        else:
            root = msg.get("thread_ts")
            if root in ch.replies and ts in ch.replies[root]:
                ch.replies[root].remove(ts)
                if root in ch.msgs:
                    ch.msgs[root]["reply_count"] = len(ch.replies[root])
        ch.pins = [p for p in ch.pins if p["ts"] != ts]
        return msg

    # --- triggers -----------------------------------------------------------
    def issue_trigger(self, user: str) -> str:
        tid = f"{int(time.time())}.{secrets.randbelow(10**12)}.{secrets.token_hex(16)}"
        self.triggers[tid] = (time.monotonic(), user)
        return tid

    def consume_trigger(self, trigger_id: str | None, ttl: float) -> str | None:
        """Return an error name, or None when the trigger is valid (it is then used up)."""
        if not trigger_id:
            return "invalid_arguments"
        if trigger_id in self.used_triggers:
            return "trigger_exchanged"
        issued = self.triggers.get(trigger_id)
        if issued is None or time.monotonic() - issued[0] > ttl:
            return "expired_trigger_id"
        self.used_triggers.add(trigger_id)
        return None


def _pairs(given: dict | list | None, default: dict) -> list[tuple[str, str]]:
    if given is None:
        return list(default.items())
    if isinstance(given, dict):
        return list(given.items())
    return [tuple(x) for x in given]
