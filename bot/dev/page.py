"""The page's server: the front end, what each person sees (pushed over a WebSocket), their actions.

The bot changes the workspace through the emulator's Web API and response_urls; the page's own
actions change it through the emulator's driver. Both leave a trace the watcher sees (the call
log, the response_url posts, ephemerals, the page's action counter), and every open page then
gets a fresh view of the workspace as its person sees it, only when that view changed.
"""
from __future__ import annotations

import asyncio
import contextlib
import json
import logging
from pathlib import Path
from urllib.parse import urlsplit

from aiohttp import WSMsgType, web

from .actions import COMMANDS, SHORTCUTS, perform
from .session import DevSession

log = logging.getLogger(__name__)

STATIC = Path(__file__).with_name("static")
WATCH_INTERVAL_S = 0.05
LOOPBACK = ("127.0.0.1", "localhost", "::1")


def snapshot(session: DevSession, user: str) -> dict:
    """The board channel, its threads, the person's ephemerals, Home tab and open modals."""
    emu, channel = session.emulator, session.board_channel
    messages = emu.messages(channel)
    approvers = set(session.approvers)
    return {
        "me": user,
        "bot_user": emu.bot_user_id,
        "users": [{"id": u["id"], "name": u["name"], "real_name": u.get("real_name", u["name"]),
                   "is_bot": u.get("is_bot", False), "approver": u["id"] in approvers}
                  for u in emu.ws.users.values()],
        "channels": {c.id: c.name for c in emu.ws.channels.values() if not c.is_im},
        "channel": {"id": channel, "name": emu.ws.channels[channel].name},
        "messages": messages,
        "pins": [m["ts"] for m in emu.pinned(channel)],
        "threads": {m["ts"]: emu.thread(channel, m["ts"]) for m in messages if m.get("reply_count")},
        "ephemerals": emu.ephemerals(user=user, channel=channel),
        "home": emu.home(user),
        "modals": emu.views(user),
        "commands": COMMANDS,
        "shortcuts": SHORTCUTS,
        "repo": session.repo_name,
        "agent": session.agent_name,
    }


class DevPage:
    """aiohttp on `host:port` (127.0.0.1 by default): /, /static/*, /api/state, /api/act, /ws."""

    def __init__(self, session: DevSession, host: str = "127.0.0.1", port: int = 8765) -> None:
        self.session, self.host, self.port = session, host, port
        self.actions = 0                                   # page actions done, for the watcher
        self._sockets: dict[web.WebSocketResponse, dict] = {}   # -> {"user", "sent"}
        self._runner: web.AppRunner | None = None
        self._watcher: asyncio.Task | None = None

    @property
    def url(self) -> str:
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"http://{host}:{self.port}/"

    async def start(self) -> "DevPage":
        app = web.Application(middlewares=[self._local_only])
        app.router.add_get("/", self._index)
        app.router.add_static("/static/", STATIC, append_version=False)
        app.router.add_get("/api/state", self._state)
        app.router.add_post("/api/act", self._act)
        app.router.add_get("/ws", self._ws)
        self._runner = web.AppRunner(app, access_log=None, handle_signals=False)
        await self._runner.setup()
        site = web.TCPSite(self._runner, self.host, self.port)
        await site.start()
        self.port = self._runner.addresses[0][1]
        self._watcher = asyncio.create_task(self._watch())
        return self

    async def stop(self) -> None:
        if self._watcher is not None:
            self._watcher.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._watcher
            self._watcher = None
        for ws in list(self._sockets):
            await ws.close()
        if self._runner is not None:
            await self._runner.cleanup()
            self._runner = None

    # --- requests ------------------------------------------------------------------
    @web.middleware
    async def _local_only(self, request: web.Request, handler):
        """Only this page may act: another site open in the same browser must not (no CORS, and a
        Host check against DNS rebinding)."""
        if self.host in LOOPBACK and urlsplit(f"//{request.host}").hostname not in LOOPBACK:
            return web.Response(status=403, text="taskpin dev answers only to 127.0.0.1 / localhost")
        origin = request.headers.get("Origin")
        if origin is not None and origin != f"{request.scheme}://{request.host}":
            return web.Response(status=403, text="requests from other pages are refused")
        return await handler(request)

    async def _index(self, request: web.Request) -> web.StreamResponse:
        return web.FileResponse(STATIC / "index.html", headers={"Cache-Control": "no-store"})

    def _user(self, request: web.Request) -> str:
        user = request.query.get("user", "")
        return user if user in self.session.emulator.ws.users else self.session.users["owner"]

    async def _state(self, request: web.Request) -> web.Response:
        return web.json_response(snapshot(self.session, self._user(request)))

    async def _act(self, request: web.Request) -> web.Response:
        try:
            body = await request.json()
        except ValueError:
            return web.json_response({"ok": False, "error": "the page sent something that is not JSON"}, status=400)
        try:
            result = await perform(self.session.emulator, self.session.board_channel, body)
        finally:
            self.actions += 1
        return web.json_response(result)

    async def _ws(self, request: web.Request) -> web.StreamResponse:
        ws = web.WebSocketResponse(heartbeat=20)
        await ws.prepare(request)
        self._sockets[ws] = {"user": self._user(request), "sent": None}
        try:
            await self._push(ws)
            async for msg in ws:
                if msg.type != WSMsgType.TEXT:
                    continue
                with contextlib.suppress(ValueError, AttributeError):
                    user = json.loads(msg.data).get("user")
                    if user in self.session.emulator.ws.users:
                        self._sockets[ws] = {"user": user, "sent": None}
                        await self._push(ws)
        finally:
            self._sockets.pop(ws, None)
        return ws

    # --- pushing ---------------------------------------------------------------------
    def _fingerprint(self) -> tuple:
        emu = self.session.emulator
        return (len(emu.calls), len(emu.response_url_posts), len(emu.ws.ephemerals), self.actions)

    async def _watch(self) -> None:
        last = None
        while True:
            await asyncio.sleep(WATCH_INTERVAL_S)
            now = self._fingerprint()
            if now != last and self._sockets:
                last = now
                for ws in list(self._sockets):
                    with contextlib.suppress(ConnectionError, RuntimeError):
                        await self._push(ws)

    async def _push(self, ws: web.WebSocketResponse) -> None:
        seen = self._sockets.get(ws)
        if seen is None or ws.closed:
            return
        text = json.dumps({"type": "state", "state": snapshot(self.session, seen["user"])})
        if text != seen["sent"]:
            seen["sent"] = text
            await ws.send_str(text)
