"""What a user does in the Slack client: slash commands, clicks, modal submits, messages, Home tab."""
from __future__ import annotations

import copy
from typing import TYPE_CHECKING, Any

from . import payloads
from .blockkit import iter_elements, validate_view
from .delivery import Ack
from .views import MAX_STACK, build_view, replace_view

if TYPE_CHECKING:
    from .delivery import Dispatcher
    from .state import Channel, Workspace


class UserActions:
    """Mixin for SlackEmulator. Every call returns the app's Ack (raises NotAcked when expect_ack)."""

    if TYPE_CHECKING:   # what the mixin uses of SlackEmulator (bot/emulator/server.py)
        ws: Workspace
        dispatcher: Dispatcher
        response_urls: dict[str, dict]

        def issue_response_url(self, user: str, ch: Channel, message_ts: str | None = None,
                               ephemeral: bool = False) -> str: ...

        async def deliver(self, kind: str, payload: dict, *, timeout: float | None = None,
                          expect_ack: bool = True, retry_attempt: int = 0, retry_reason: str = "",
                          envelope_id: str | None = None, connection: int | None = None) -> Ack: ...

        async def send_event(self, event: dict, **kw: Any) -> Ack: ...

        def apply_response(self, body: dict, ctx: dict) -> None: ...

    def _user(self, ref: str) -> dict:
        user = self.ws.users.get(ref) or next((u for u in self.ws.users.values() if u["name"] == ref), None)
        if user is None:
            raise KeyError(f"no user {ref!r} in the emulated workspace")
        return user

    async def slash_command(self, user: str, command: str, text: str = "", *, channel: str = "C_BOARD",
                            timeout: float | None = None, expect_ack: bool = True) -> Ack:
        u, ch = self._user(user), self.ws.require_channel(channel)
        url = self.issue_response_url(u["id"], ch)
        self.response_urls[url.rsplit("/", 1)[1]]["source"] = "slash_ack"
        p = payloads.slash_command(u, ch, command, text, url, self.ws.issue_trigger(u["id"]))
        ack = await self.deliver("slash_commands", p, timeout=timeout, expect_ack=expect_ack)
        if ack.acked and ack.payload and (ack.payload.get("text") or ack.payload.get("blocks")):
            self.apply_response(ack.payload, {**self.response_urls[url.rsplit("/", 1)[1]]})
        return ack

    # --- clicks on messages ---------------------------------------------------------
    def _find_on_message(self, user: str, channel: str, message_ts: str):
        ch = self.ws.require_channel(channel)
        msg = ch.msgs.get(message_ts)
        if msg is not None:
            return ch, msg, False
        eph = next((e for e in self.ws.ephemerals if e["ts"] == message_ts and e["channel"] == ch.id
                    and e["recipient"] == user), None)
        if eph is None:
            raise AssertionError(f"{user} sees no message {message_ts} in {channel}")
        return ch, eph, True

    async def click_button(self, user: str, channel: str, message_ts: str, action_id: str,
                           value: str | None = None, **kw) -> Ack:
        """Click a button the user can see on a message (or an ephemeral message sent to them)."""
        return await self._act_on_message(user, channel, message_ts, action_id, value, ("button",), **kw)

    async def select_option(self, user: str, channel: str, message_ts: str, action_id: str,
                            value: str, **kw) -> Ack:
        """Pick an option in a static_select / overflow menu on a message."""
        return await self._act_on_message(user, channel, message_ts, action_id, value,
                                          ("static_select", "overflow"), **kw)

    async def check_boxes(self, user: str, channel: str, message_ts: str, action_id: str,
                          values: list[str], **kw) -> Ack:
        """Tick exactly `values` in a checkboxes element on a message (the others are unticked).

        Like the Slack client, this sends a block_actions with the new selection, and keeps it in
        the message's state: a later click on that message (e.g. a Submit button) by the same user
        carries it in `state.values`.
        """
        u = self._user(user)
        ch, msg, ephemeral = self._find_on_message(u["id"], channel, message_ts)
        block, el = _find_element(msg.get("blocks"), action_id, None, ("checkboxes",), f"message {message_ts}")
        chosen = payloads.state_value(el, list(values))["selected_options"]
        state = self._message_states().setdefault((u["id"], ch.id, message_ts), {})
        state.setdefault(block["block_id"], {})[el["action_id"]] = {"type": "checkboxes",
                                                                    "selected_options": chosen}
        act = payloads.action(block, el, None)
        act["selected_options"] = copy.deepcopy(chosen)
        return await self._deliver_message_action(u, ch, msg, ephemeral, act, **kw)

    def _message_states(self) -> dict:
        """(user, channel, message ts) -> state.values of that user's unsent inputs on the message."""
        return self.__dict__.setdefault("_msg_input_state", {})

    async def _act_on_message(self, user, channel, message_ts, action_id, value, types, **kw) -> Ack:
        u = self._user(user)
        ch, msg, ephemeral = self._find_on_message(u["id"], channel, message_ts)
        block, el = _find_element(msg.get("blocks"), action_id, value, types, f"message {message_ts}")
        return await self._deliver_message_action(u, ch, msg, ephemeral, payloads.action(block, el, value), **kw)

    async def _deliver_message_action(self, u, ch, msg, ephemeral, act, *, timeout=None, expect_ack=True,
                                      connection=None) -> Ack:
        url = self.issue_response_url(u["id"], ch, msg["ts"], ephemeral)
        p = payloads.block_actions_on_message(u, ch, msg, act, self.ws.issue_trigger(u["id"]), url, ephemeral)
        state = self._message_states().get((u["id"], ch.id, msg["ts"]))
        if state:
            p["state"] = {"values": copy.deepcopy(state)}
        return await self.deliver("interactive", p, timeout=timeout, expect_ack=expect_ack, connection=connection)

    # --- views ----------------------------------------------------------------------------
    def _view_of(self, user: str, view_id: str) -> dict:
        stack = self.ws.modal_stacks.get(user, [])
        if view_id in stack or self.ws.home_views.get(user) == view_id:
            return self.ws.views[view_id]
        raise AssertionError(f"{user} has no open view {view_id}")

    async def click_view_button(self, user: str, view_id: str, action_id: str, value: str | None = None,
                                *, timeout: float | None = None, expect_ack: bool = True) -> Ack:
        """Click a button in an open modal or in the user's Home tab."""
        u = self._user(user)
        view = self._view_of(u["id"], view_id)
        block, el = _find_element(view.get("blocks"), action_id, value, ("button",), f"view {view_id}")
        p = payloads.block_actions_on_view(u, view, payloads.action(block, el, value),
                                           self.ws.issue_trigger(u["id"]))
        return await self.deliver("interactive", p, timeout=timeout, expect_ack=expect_ack)

    async def click_home_button(self, user: str, action_id: str, value: str | None = None, **kw) -> Ack:
        u = self._user(user)
        view_id = self.ws.home_views.get(u["id"])
        if view_id is None:
            raise AssertionError(f"{user} has no published Home tab")
        return await self.click_view_button(u["id"], view_id, action_id, value, **kw)

    async def submit_view(self, user: str, view_id: str, values: dict | None = None, *,
                          timeout: float | None = None, expect_ack: bool = True) -> Ack:
        """Submit a modal. values: {block_id: {action_id: value}} or {block_id: value}.

        The Ack's `errors` holds `response_action: errors`; update/push/clear are applied like Slack.
        """
        u = self._user(user)
        view = self._view_of(u["id"], view_id)
        if view.get("type") != "modal" or not view.get("submit"):
            raise AssertionError(f"view {view_id} has no submit button")
        view["state"] = {"values": _state_values(view, values or {})}
        p = payloads.view_submission(u, view, self.ws.issue_trigger(u["id"]))
        ack = await self.deliver("interactive", p, timeout=timeout, expect_ack=expect_ack)
        if ack.acked:
            self._after_submission(u["id"], view, ack)
        return ack

    def _after_submission(self, user: str, view: dict, ack: Ack) -> None:
        body, stack = ack.payload or {}, self.ws.modal_stacks.get(user, [])
        action = body.get("response_action")
        if action == "errors":
            ack.errors = body.get("errors") or {}
            return
        new = body.get("view")
        if action in ("update", "push") and (not isinstance(new, dict) or validate_view(new)):
            ack.extra["view_errors"] = validate_view(new) if isinstance(new, dict) else ["no view"]
            return
        # past the check above, update and push always carry a valid view dict
        if action == "update" and isinstance(new, dict):
            replace_view(self.ws, view, new)
        elif action == "push" and isinstance(new, dict) and len(stack) < MAX_STACK:
            pushed = build_view(self.ws, new, root=stack[0], previous=stack[-1], user=user)
            stack.append(pushed["id"])
        elif action == "clear":
            stack.clear()
        elif view["id"] in stack:
            stack.remove(view["id"])

    async def close_view(self, user: str, view_id: str, **kw) -> Ack | None:
        """Click the modal's close button; sends view_closed if the view asked for notify_on_close."""
        u = self._user(user)
        view = self._view_of(u["id"], view_id)
        stack = self.ws.modal_stacks.get(u["id"], [])
        if view.get("clear_on_close"):
            stack.clear()
        elif view_id in stack:
            stack.remove(view_id)
        if view.get("notify_on_close"):
            return await self.deliver("interactive", payloads.view_closed(u, view), **kw)
        return None

    # --- messages, Home, shortcuts --------------------------------------------------------
    async def user_message(self, user: str, channel: str, text: str, thread_ts: str | None = None,
                           *, timeout: float | None = None, expect_ack: bool = True) -> Ack:
        """The user posts a message (or a thread reply); the app gets the `message` event.

        `text` is what the user typed. Like Slack, the message's `text` carries it with ``&``, ``<``
        and ``>`` escaped as entities (so typed text can never look like a ``<@U…>`` mention);
        the rich_text block holds it as typed."""
        u, ch = self._user(user), self.ws.require_channel(channel)
        if u["id"] not in ch.members:
            raise AssertionError(f"{user} is not a member of {channel}")
        root = None
        if thread_ts:
            root = self.ws.thread_root(ch, thread_ts)
            if root is None:
                raise AssertionError(f"no message {thread_ts} to reply to in {channel}")
        escaped = text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")
        msg = self.ws.add_message(ch, {"user": u["id"], "text": escaped, "blocks": payloads.rich_text(text),
                                       "client_msg_id": payloads.random_id("", 8).lower()}, root)
        ack = await self.send_event(payloads.message_event(msg, ch), timeout=timeout, expect_ack=expect_ack)
        ack.message = copy.deepcopy(msg)
        return ack

    async def open_home(self, user: str, **kw) -> Ack:
        u = self._user(user)
        vid = self.ws.home_views.get(u["id"])
        view = self.ws.views.get(vid) if vid is not None else None
        return await self.send_event(payloads.app_home_opened(u["id"], view), **kw)

    async def message_shortcut(self, user: str, channel: str, message_ts: str, callback_id: str,
                               **kw) -> Ack:
        u = self._user(user)
        ch, msg, _ = self._find_on_message(u["id"], channel, message_ts)
        url = self.issue_response_url(u["id"], ch, message_ts)
        p = payloads.message_shortcut(u, ch, msg, callback_id, self.ws.issue_trigger(u["id"]), url)
        return await self.deliver("interactive", p, **kw)

    async def global_shortcut(self, user: str, callback_id: str, **kw) -> Ack:
        u = self._user(user)
        p = payloads.global_shortcut(u, callback_id, self.ws.issue_trigger(u["id"]))
        return await self.deliver("interactive", p, **kw)

    # --- someone else changes the bot's messages (admins can) ------------------------------
    async def user_unpin(self, user: str, channel: str, ts: str, **kw) -> Ack | None:
        """A user unpins a message: the pin goes, and the app gets `pin_removed` (if it can be reached)."""
        u, ch = self._user(user), self.ws.require_channel(channel)
        msg = ch.msgs.get(ts)
        pin = next((p for p in ch.pins if p["ts"] == ts), None)
        if msg is None or pin is None:
            raise AssertionError(f"message {ts} is not pinned in {channel}")
        ch.pins.remove(pin)
        msg["pinned_to"] = [c for c in msg.get("pinned_to", []) if c != ch.id]
        if not msg["pinned_to"]:
            msg.pop("pinned_to")
        event = {"type": "pin_removed", "user": u["id"], "channel_id": ch.id,
                 "item": {"type": "message", "channel": ch.id, "created": pin["created"],
                          "created_by": pin["created_by"], "message": copy.deepcopy(msg)},
                 "has_pins": bool(ch.pins), "event_ts": self.ws.clock.next()}
        if not self.dispatcher.can_deliver():
            return None
        return await self.send_event(event, **kw)

    async def user_delete(self, user: str, channel: str, ts: str, **kw) -> Ack | None:
        """A user (an admin, for someone else's message) deletes a message: it and its pins go, and
        the app gets `message` with subtype `message_deleted`, like Slack sends."""
        self._user(user)
        ch = self.ws.require_channel(channel)
        if ts not in ch.msgs:
            raise AssertionError(f"no message {ts} in {channel}")
        old = self.ws.delete_message(ch, ts)
        if not self.dispatcher.can_deliver():
            return None
        return await self.send_event(payloads.message_deleted_event(old, ch, self.ws.clock.next()), **kw)

def _find_element(blocks, action_id, value, types, where):
    found = [(b, el) for b, el in iter_elements(blocks or []) if el.get("action_id") == action_id
             and el.get("type") in types]
    if value is not None and "button" in types:
        found = [(b, el) for b, el in found if el.get("value") == value]
    if not found:
        raise AssertionError(f"no {'/'.join(types)} with action_id={action_id!r}"
                             f"{'' if value is None else f' value={value!r}'} on {where}")
    return found[0]


def _state_values(view: dict, given: dict) -> dict:
    """Build view.state.values for every input block, like the Slack client does on submit."""
    values: dict = {}
    seen = set()
    for block, el in iter_elements(view.get("blocks")):
        if block.get("type") != "input":
            continue
        bid, aid = block.get("block_id"), el.get("action_id")
        if not bid or not aid:
            raise AssertionError("input blocks need block_id and action_id for tests to fill them")
        raw = given.get(bid, payloads.initial_value(el))
        if isinstance(raw, dict) and aid in raw:
            raw = raw[aid]
        seen.add(bid)
        if raw in (None, "", []) and not block.get("optional"):
            raise AssertionError(f"required input {bid}/{aid} is empty: Slack would not submit")
        values[bid] = {aid: payloads.state_value(el, raw)}
    unknown = set(given) - seen
    if unknown:
        raise AssertionError(f"view {view['id']} has no input blocks {sorted(unknown)}")
    return values
