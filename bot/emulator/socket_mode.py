"""Socket Mode: the WebSocket endpoint apps.connections.open points to."""
from __future__ import annotations

import asyncio
import json
import time
import uuid
from typing import Any

from aiohttp import WSMsgType, web

from .state import APP_ID


class SocketModeHub:
    """Accepts app connections, sends envelopes to the newest live one, collects acks."""

    def __init__(self) -> None:
        self.tickets: set[str] = set()
        self.connections: list[web.WebSocketResponse] = []
        self.opened = 0                                    # connections ever accepted
        self.pending: dict[str, asyncio.Future] = {}       # envelope_id -> future(ack message)
        self.raw_acks: list[dict] = []                     # every ack message, with time received
        self._changed = asyncio.Event()
        # Slack spreads an app's events over its connections: with `spread`, envelopes go to the
        # live connections in turn instead of the newest one.
        self.spread = False
        self._turn = 0
        # Connections told to reconnect: Slack sends them nothing more, it waits for the new one.
        self._draining: set[int] = set()

    def issue_url(self, base_ws: str) -> str:
        ticket = uuid.uuid4().hex
        self.tickets.add(ticket)
        return f"{base_ws}socket-mode?ticket={ticket}"

    @property
    def live(self) -> list[web.WebSocketResponse]:
        return [ws for ws in self.connections if not ws.closed and id(ws) not in self._draining]

    async def handle(self, request: web.Request) -> web.StreamResponse:
        ticket = request.query.get("ticket", "")
        if ticket not in self.tickets:
            return web.Response(status=401, text="invalid ticket")
        self.tickets.discard(ticket)
        ws = web.WebSocketResponse(autoping=True)
        await ws.prepare(request)
        self.connections.append(ws)
        self.opened += 1
        await ws.send_json({
            "type": "hello", "num_connections": len(self.live),
            "debug_info": {"host": "applink-emulator", "build_number": 1,
                           "approximate_connection_time": 18060},
            "connection_info": {"app_id": APP_ID},
        })
        self._notify()
        try:
            async for msg in ws:
                if msg.type == WSMsgType.TEXT:
                    self._on_text(msg.data)
        finally:
            self._notify()
        return ws

    def _on_text(self, data: str) -> None:
        try:
            message: Any = json.loads(data)
        except ValueError:
            return
        if not isinstance(message, dict) or "envelope_id" not in message:
            return
        message = {**message, "_received": time.monotonic()}
        self.raw_acks.append(message)
        fut = self.pending.pop(message["envelope_id"], None)
        if fut is not None and not fut.done():
            fut.set_result(message)

    def _notify(self) -> None:
        self._changed.set()
        self._changed = asyncio.Event()

    async def wait_connected(self, timeout: float) -> web.WebSocketResponse:
        deadline = asyncio.get_running_loop().time() + timeout
        while not self.live:
            left = deadline - asyncio.get_running_loop().time()
            if left <= 0:
                raise TimeoutError("no Socket Mode connection: is the app's socket handler running?")
            try:
                await asyncio.wait_for(self._changed.wait(), left)
            except TimeoutError:
                pass
        return self.live[-1]

    async def send(self, envelope: dict, connect_timeout: float, connection: int | None = None) -> asyncio.Future:
        """Send an envelope (to live connection number `connection`, if given); return a future
        resolved with the app's ack message."""
        ws = await self.wait_connected(connect_timeout)
        if connection is not None:
            ws = self.live[connection]
        elif self.spread:
            self._turn += 1
            ws = self.live[self._turn % len(self.live)]
        fut = asyncio.get_running_loop().create_future()
        self.pending[envelope["envelope_id"]] = fut
        await ws.send_str(json.dumps(envelope))
        return fut

    async def disconnect(self, reason: str = "warning") -> None:
        """Ask every connected client to reconnect, as Slack does before rotating a connection."""
        for ws in self.live:
            self._draining.add(id(ws))
            await ws.send_json({"type": "disconnect", "reason": reason,
                                "debug_info": {"host": "applink-emulator"}})
        self._notify()

    async def close_all(self) -> None:
        for ws in list(self.connections):
            if not ws.closed:
                await ws.close()
        for fut in self.pending.values():
            fut.cancel()
        self.pending.clear()
