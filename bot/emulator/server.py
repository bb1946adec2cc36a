"""SlackEmulator: the aiohttp server tying state, Web API, rate limits and delivery together."""
from __future__ import annotations

import asyncio
import copy
import time
import uuid

from aiohttp import web

from . import payloads, views  # noqa: F401  (views registers the views.* methods)
from .delivery import Ack, Delivery, Dispatcher, NotAcked
from .driver import UserActions
from .faults import Faults, listening_socket
from .ratelimit import RateLimiter
from .reading import Reading
from .state import BOT_USER_ID, TEAM_DOMAIN, TEAM_ID, Channel, Workspace
from .tokens import TokenRules
from .webapi import ApiError, CallRecord, bot_fields, check_content, handle

RESPONSE_URL_USES = 5
RESPONSE_URL_TTL = 30 * 60


class SlackEmulator(UserActions, Reading):
    """A local Slack: Web API under `api_url`, Socket Mode or HTTP delivery, a user-side driving API."""

    def __init__(self, *, rate_limits: bool | dict = True, bot_token: str = "xoxb-test",
                 app_token: str = "xapp-test", signing_secret: str = "emulator-signing-secret",
                 users: dict | list | None = None, channels: dict | list | None = None,
                 ack_timeout: float = 3.0, trigger_ttl: float = 3.0, bot_events: bool = True) -> None:
        self.bot_token, self.app_token, self.signing_secret = bot_token, app_token, signing_secret
        self.ack_timeout, self.trigger_ttl, self.bot_events = ack_timeout, trigger_ttl, bot_events
        self.ws = Workspace(users, channels)
        self.tokens = TokenRules(bot_token)
        self.limiter = RateLimiter(rate_limits)
        self.dispatcher = Dispatcher(signing_secret)
        self.calls: list[CallRecord] = []
        self.response_urls: dict[str, dict] = {}
        self.response_url_posts: list[dict] = []
        self.port: int | None = None
        self.faults = Faults(self)   # HTTP errors, hangs, outages, dropped sockets on demand
        self._site: web.SockSite | None = None
        self._runner: web.AppRunner | None = None
        self._tasks: set[asyncio.Task] = set()

    # --- lifecycle --------------------------------------------------------------
    async def start(self) -> "SlackEmulator":
        app = web.Application(client_max_size=8 * 1024 * 1024, middlewares=[self.faults.middleware])
        app.router.add_route("*", "/api/{method}", self._api)
        app.router.add_get("/socket-mode", self.dispatcher.socket.handle)
        app.router.add_post("/response/{rid}", self._response_url)
        sock = listening_socket(0)
        self.port = sock.getsockname()[1]
        self._runner = web.AppRunner(app, handle_signals=False)
        await self._runner.setup()
        self._site = web.SockSite(self._runner, sock)
        await self._site.start()
        return self

    async def _stop_listening(self) -> None:
        """For an outage: connections to the port are refused until _listen_again."""
        if self._site is not None:
            await self._site.stop()
            self._site = None

    async def _listen_again(self) -> None:
        if self._site is None and self._runner is not None and self.port is not None:
            self._site = web.SockSite(self._runner, listening_socket(self.port))
            await self._site.start()

    async def _api(self, request: web.Request) -> web.Response:
        return await handle(self, request)

    async def stop(self) -> None:
        for task in list(self._tasks):
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)
        await self.faults.close()
        await self.dispatcher.close()
        if self._runner is not None:
            await self._runner.cleanup()
            self._runner = None

    async def __aenter__(self) -> "SlackEmulator":
        return await self.start()

    async def __aexit__(self, *exc) -> None:
        await self.stop()

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.port}/"

    @property
    def api_url(self) -> str:
        return self.base_url + "api/"

    @property
    def ws_url(self) -> str:
        return f"ws://127.0.0.1:{self.port}/"

    bot_user_id = BOT_USER_ID
    team_id = TEAM_ID

    # --- workspace set-up -----------------------------------------------------------
    def add_user(self, user_id: str, name: str, **profile) -> dict:
        return self.ws.add_user(user_id, name, **profile)

    def add_channel(self, channel_id: str, name: str, *, members: list[str] | None = None,
                    is_private: bool = False, bot_member: bool = True) -> Channel:
        return self.ws.add_channel(channel_id, name, members=members, is_private=is_private,
                                   bot_member=bot_member)

    # --- delivery mode ----------------------------------------------------------------
    def set_request_url(self, url: str | None, *, signature: str = "valid") -> None:
        """Deliver over HTTP to `url` (None: back to Socket Mode). signature: valid | bad | stale."""
        self.dispatcher.http.url = url
        self.dispatcher.http.signature = signature

    @property
    def deliveries(self) -> list[Delivery]:
        return self.dispatcher.deliveries

    @property
    def acks(self) -> list[Ack]:
        return [d.ack for d in self.dispatcher.deliveries if d.ack is not None and d.ack.acked]

    @property
    def socket_connections(self) -> int:
        """Socket Mode connections accepted so far (a reconnect makes it grow)."""
        return self.dispatcher.socket.opened

    async def wait_socket(self, timeout: float = 5.0) -> None:
        await self.dispatcher.socket.wait_connected(timeout)

    async def disconnect_socket(self, reason: str = "warning") -> None:
        """Send {"type": "disconnect"}: the app's Socket Mode client reconnects."""
        await self.dispatcher.socket.disconnect(reason)

    async def deliver(self, kind: str, payload: dict, *, timeout: float | None = None,
                      expect_ack: bool = True, retry_attempt: int = 0, retry_reason: str = "",
                      envelope_id: str | None = None, connection: int | None = None) -> Ack:
        """Deliver a raw payload (kind: events_api | slash_commands | interactive) and wait for the ack;
        `connection` picks a live Socket Mode connection by number (default: the newest)."""
        timeout = timeout or self.ack_timeout
        ack = await self.dispatcher.deliver(kind, payload, timeout=timeout, retry_attempt=retry_attempt,
                                            retry_reason=retry_reason, envelope_id=envelope_id,
                                            connection=connection)
        if expect_ack and not ack.acked:
            why = ack.extra.get("error") or (f"HTTP {ack.http_status}" if ack.http_status
                                             else f"no ack within {timeout}s")
            raise NotAcked(f"app did not ack {ack.delivery.kind}: {why}")
        return ack

    async def redeliver(self, delivery: Delivery | Ack, *, reason: str | None = None,
                        timeout: float | None = None, expect_ack: bool = True) -> Ack:
        """Deliver the same payload again with retry_attempt + 1, as Slack's retries do."""
        d = delivery.delivery if isinstance(delivery, Ack) else delivery
        reason = reason or ("http_timeout" if self.dispatcher.mode == "http" else "timeout")
        return await self.deliver(d.type, d.payload, timeout=timeout, expect_ack=expect_ack,
                                  retry_attempt=d.retry_attempt + 1, retry_reason=reason,
                                  envelope_id=d.id if d.mode == "socket" else None)

    async def send_event(self, event: dict, **kw) -> Ack:
        """Deliver any Events API event (wrapped in an event_callback)."""
        return await self.deliver("events_api", payloads.event_callback(event), **kw)

    async def url_verification(self, challenge: str = "emulator-challenge") -> Ack:
        return await self.deliver("events_api", {"token": payloads.VERIFICATION_TOKEN,
                                                 "challenge": challenge, "type": "url_verification"})

    # --- rate limits & call log ---------------------------------------------------------
    def force_rate_limit(self, method: str, seconds: float, retry_after: int = 1) -> None:
        """Answer every call to `method` ("*" for all) with 429 for `seconds`."""
        self.limiter.force(method, seconds, retry_after)

    def count(self, method: str | None = None, *, ok: bool | None = None) -> int:
        return sum(1 for c in self.calls if (method is None or c.method == method)
                   and (ok is None or c.ok == ok))

    def ratelimited_count(self, method: str | None = None) -> int:
        return sum(1 for c in self.calls if c.http_status == 429 and (method is None or c.method == method))

    # --- things the Web API and deliveries share ------------------------------------------
    def post_as_bot(self, ch: Channel, content: dict, thread_ts: str | None = None) -> dict:
        msg = self.ws.add_message(ch, {**bot_fields(), **copy.deepcopy(content)}, thread_ts)
        self._emit(payloads.message_event(msg, ch))
        return msg

    def add_ephemeral(self, ch: Channel, user: str, content: dict, source: str,
                      thread_ts: str | None = None) -> dict:
        eph = {"type": "message", **bot_fields(), **copy.deepcopy(content), "ts": self.ws.clock.next(),
               "channel": ch.id, "recipient": user, "source": source}
        if thread_ts:
            eph["thread_ts"] = thread_ts
        self.ws.ephemerals.append(eph)
        return eph

    def permalink(self, ch: Channel, msg: dict) -> str:
        link = f"https://{TEAM_DOMAIN}.slack.com/archives/{ch.id}/p{msg['ts'].replace('.', '')}"
        if msg.get("thread_ts") and msg["thread_ts"] != msg["ts"]:
            link += f"?thread_ts={msg['thread_ts']}&cid={ch.id}"
        return link

    def emit_message_changed(self, ch: Channel, msg: dict, old: dict) -> None:
        self._emit(payloads.message_changed_event(msg, old, ch))

    def emit_message_deleted(self, ch: Channel, old: dict) -> None:
        self._emit(payloads.message_deleted_event(old, ch, self.ws.clock.next()))

    def _emit(self, event: dict) -> None:
        """Deliver an event caused by the bot itself, in the background (nobody waits for its ack)."""
        if not self.bot_events or not self.dispatcher.can_deliver():
            return
        self._spawn(self.dispatcher.deliver("events_api", payloads.event_callback(event),
                                            timeout=self.ack_timeout))

    def _spawn(self, coro) -> None:
        task = asyncio.ensure_future(coro)
        self._tasks.add(task)
        task.add_done_callback(self._forget_task)

    def _forget_task(self, task: asyncio.Task) -> None:
        self._tasks.discard(task)
        if not task.cancelled():
            task.exception()   # retrieved, so asyncio does not log "exception was never retrieved"

    # --- response_url -------------------------------------------------------------------------
    def issue_response_url(self, user: str, ch: Channel, message_ts: str | None = None,
                           ephemeral: bool = False) -> str:
        rid = uuid.uuid4().hex
        self.response_urls[rid] = {"user": user, "channel": ch.id, "message_ts": message_ts,
                                   "ephemeral": ephemeral, "uses": 0, "created": time.monotonic()}
        return f"{self.base_url}response/{rid}"

    async def _response_url(self, request: web.Request) -> web.Response:
        ctx = self.response_urls.get(request.match_info["rid"])
        if ctx is None or time.monotonic() - ctx["created"] > RESPONSE_URL_TTL:
            return web.Response(status=404, text="no_service")
        if ctx["uses"] >= RESPONSE_URL_USES:
            return web.Response(status=404, text="used_url")
        body = await request.json() if request.content_type == "application/json" else dict(await request.post())
        ctx["uses"] += 1
        self.response_url_posts.append({"body": body, "context": dict(ctx), "time": time.monotonic()})
        try:
            self.apply_response(body, ctx)
        except ApiError as e:
            return web.json_response({"ok": False, "error": e.error, **e.extra})
        return web.json_response({"ok": True})

    def apply_response(self, body: dict, ctx: dict) -> None:
        """What Slack does with a response_url post or a slash command's ack payload."""
        ch = self.ws.channels[ctx["channel"]]
        if _truthy(body.get("delete_original")):
            self._on_original(ctx, None)
            return
        if _truthy(body.get("replace_original")):
            self._on_original(ctx, check_content(body))
            return
        content = check_content(body)
        if body.get("response_type") == "in_channel":
            thread = body.get("thread_ts")
            self.post_as_bot(ch, content, self.ws.thread_root(ch, thread) if thread else None)
        else:
            # Like Slack, an ephemeral answer to a click on a thread reply shows in that thread.
            original = ch.msgs.get(ctx.get("message_ts") or "") or {}
            in_thread = original.get("thread_ts") if original.get("thread_ts") != original.get("ts") else None
            self.add_ephemeral(ch, ctx["user"], content, ctx.get("source", "response_url"),
                               body.get("thread_ts") or in_thread)

    def _on_original(self, ctx: dict, content: dict | None) -> None:
        """Replace the message the response_url came from with `content` (None: delete it)."""
        ch, ts = self.ws.channels[ctx["channel"]], ctx["message_ts"]
        if ctx["ephemeral"]:
            eph = next((e for e in self.ws.ephemerals if e["ts"] == ts), None)
            if eph is not None:
                if content is None:
                    self.ws.ephemerals.remove(eph)
                else:
                    for key in ("text", "blocks"):
                        eph.pop(key, None)
                    eph.update(copy.deepcopy(content))
            return
        if ts is None or ts not in ch.msgs:
            raise ApiError("message_not_found")
        if content is None:
            self.emit_message_deleted(ch, self.ws.delete_message(ch, ts))
        else:
            old = copy.deepcopy(ch.msgs[ts])
            content.setdefault("blocks", None)
            self.emit_message_changed(ch, self.ws.update_message(ch, ts, content, BOT_USER_ID), old)


def _truthy(v) -> bool:
    return v is True or (isinstance(v, str) and v.lower() in ("true", "1"))
