"""Faults on demand, for the fault suite: what a real Slack (or the network to it) does on a bad day.

    emu.faults.http_error("chat.postMessage", 502, body="html", seconds=2)   # or times=3
    emu.faults.hang("chat.update", hang_s=5, seconds=2)          # past the client's timeout
    emu.faults.hang("chat.postMessage", hang_s=5, times=1, process=True)  # posted, answer lost
    emu.faults.refuse("chat.postMessage", "invalid_blocks", times=1)      # a Slack error, HTTP 200
    await emu.faults.outage(3)                                   # connections refused, socket dropped
    await emu.faults.drop_socket(refuse_for=3)                   # apps.connections.open fails meanwhile

Hooked into the emulator's aiohttp app as a middleware: a rule answers before the Web API
method runs (so the call had no effect), except `hang(process=True)`, which runs the method and
then never answers in time. Every fault that fired is in `hits`.
"""
from __future__ import annotations

import asyncio
import fnmatch
import socket
import time
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Literal

from aiohttp import web

if TYPE_CHECKING:
    from .server import SlackEmulator

Body = Literal["html", "json", "text"]
JSON_ERRORS = {500: "internal_error", 502: "bad_gateway", 503: "service_unavailable", 504: "request_timeout"}
HTML = "<html><head><title>{status}</title></head><body><h1>{status} {reason}</h1><hr>nginx</body></html>"


@dataclass
class Rule:
    method: str                       # a Web API method name or glob ("chat.*", "*")
    action: Literal["status", "hang", "refuse"]
    status: int = 500
    error: str = ""                   # refuse: the Slack error code
    body: Body = "html"
    hang_s: float = 0.0
    process: bool = False             # hang: run the method first (the call has its effect)
    until: float | None = None        # time.monotonic() deadline
    times: int | None = None          # left to fire

    def active(self, now: float) -> bool:
        return (self.until is None or now < self.until) and (self.times is None or self.times > 0)


@dataclass
class Hit:
    method: str
    fault: str
    at: float = field(default_factory=time.monotonic)


class Faults:
    def __init__(self, emu: SlackEmulator) -> None:
        self.emu = emu
        self.rules: list[Rule] = []
        self.hits: list[Hit] = []
        self.down_until = 0.0             # the Web API and Socket Mode refuse connections
        self.reconnects_refused_until = 0.0
        self._tasks: set[asyncio.Task] = set()

    # ---- what a test asks for ------------------------------------------------------------

    def http_error(self, method: str = "*", status: int = 500, *, body: Body = "html",
                   seconds: float | None = None, times: int | None = None) -> Rule:
        """Answer `method` with HTTP `status` (and an HTML, JSON or plain-text body)."""
        return self._add(Rule(method, "status", status=status, body=body), seconds, times)

    def refuse(self, method: str, error: str, *, seconds: float | None = None, times: int | None = 1) -> Rule:
        """Answer `method` with HTTP 200 {"ok": false, "error": error}, as Slack refuses a call."""
        return self._add(Rule(method, "refuse", error=error), seconds, times)

    def hang(self, method: str = "*", *, hang_s: float = 30.0, seconds: float | None = None,
             times: int | None = None, process: bool = False) -> Rule:
        """Answer `method` only after `hang_s` (past a client's timeout). With `process`, the call
        takes effect at once and only its answer is late."""
        return self._add(Rule(method, "hang", hang_s=hang_s, process=process), seconds, times)

    async def outage(self, seconds: float) -> None:
        """Slack is gone for `seconds`: connections to the Web API and Socket Mode are refused
        (the listening socket is closed), open ones are reset, the app's socket is dropped."""
        self.down_until = time.monotonic() + seconds
        self.reconnects_refused_until = max(self.reconnects_refused_until, self.down_until)
        self.hits.append(Hit("*", f"outage {seconds}s"))
        await self.emu._stop_listening()
        await self.emu.dispatcher.socket.close_all()
        self._later(seconds, self.emu._listen_again)

    async def drop_socket(self, *, refuse_for: float = 0.0, status: int = 503, body: Body = "json") -> None:
        """Close the app's Socket Mode connections; for `refuse_for` seconds apps.connections.open
        answers `status` and new WebSocket handshakes are refused."""
        if refuse_for > 0:
            self.reconnects_refused_until = time.monotonic() + refuse_for
            self.http_error("apps.connections.open", status, body=body, seconds=refuse_for)
        self.hits.append(Hit("socket", f"dropped, reconnects refused {refuse_for}s"))
        await self.emu.dispatcher.socket.close_all()

    def clear(self) -> None:
        self.rules.clear()
        self.reconnects_refused_until = 0.0

    @property
    def active(self) -> bool:
        now = time.monotonic()
        return now < self.down_until or now < self.reconnects_refused_until or any(r.active(now) for r in self.rules)

    def count(self, method: str | None = None) -> int:
        return sum(1 for h in self.hits if method is None or h.method == method)

    # ---- the middleware ------------------------------------------------------------------

    @web.middleware
    async def middleware(self, request: web.Request, handler):
        now = time.monotonic()
        if now < self.down_until and request.transport is not None:
            request.transport.abort()         # a connection kept alive from before: reset
            return web.Response(status=503)   # never written: the connection is gone
        if request.path.startswith("/socket-mode") and now < self.reconnects_refused_until:
            self.hits.append(Hit("socket", "handshake refused"))
            return web.Response(status=503, text="reconnects refused")
        if not request.path.startswith("/api/"):
            return await handler(request)
        method = request.path[len("/api/"):]
        rule = next((r for r in self.rules if r.active(now) and fnmatch.fnmatchcase(method, r.method)), None)
        if rule is None:
            return await handler(request)
        if rule.times is not None:
            rule.times -= 1
        if rule.action == "hang":
            self.hits.append(Hit(method, f"hang {rule.hang_s}s" + (" after processing" if rule.process else "")))
            response = await handler(request) if rule.process else None
            await asyncio.sleep(rule.hang_s)
            return response if response is not None else await handler(request)
        if rule.action == "refuse":
            self.hits.append(Hit(method, f"refused: {rule.error}"))
            return web.json_response({"ok": False, "error": rule.error})
        self.hits.append(Hit(method, f"HTTP {rule.status} {rule.body}"))
        return error_response(rule.status, rule.body)

    # ---- helpers ---------------------------------------------------------------------------

    def _add(self, rule: Rule, seconds: float | None, times: int | None) -> Rule:
        rule.until = time.monotonic() + seconds if seconds is not None else None
        rule.times = times
        self.rules.append(rule)
        return rule

    def _later(self, seconds: float, coro_fn) -> None:
        async def run() -> None:
            await asyncio.sleep(seconds)
            await coro_fn()
        task = asyncio.ensure_future(run())
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def close(self) -> None:
        for task in list(self._tasks):
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)


def error_response(status: int, body: Body) -> web.Response:
    reason = {500: "Internal Server Error", 502: "Bad Gateway", 503: "Service Unavailable",
              504: "Gateway Timeout"}.get(status, "Error")
    if body == "json":
        return web.json_response({"ok": False, "error": JSON_ERRORS.get(status, "internal_error")}, status=status)
    if body == "text":
        return web.Response(status=status, text=f"upstream connect error: {reason}", content_type="text/plain")
    return web.Response(status=status, text=HTML.format(status=status, reason=reason), content_type="text/html")


def listening_socket(port: int) -> socket.socket:
    """A socket bound to 127.0.0.1:`port` (0 for any), reusable right after the last one closed."""
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind(("127.0.0.1", port))
    return sock
