"""`taskpin run`: the core, the board, the task threads and the bolt app, in Socket Mode or HTTP mode."""
from __future__ import annotations

import asyncio
import logging
import signal

import aiohttp
from aiohttp import web
from slack_bolt.adapter.aiohttp import to_aiohttp_response, to_bolt_request

from orchestrator import Node, Role, Settings, heap

from .app import build_app
from .gate import Gate, GatedSocketModeHandler
from .services import Services
from .settings import SlackSettings
from .slack_client import http_session, make_client
from .slack_health import SlackHealth
from .surface import Surface
from .threads import thread_url

log = logging.getLogger(__name__)


class _OneLine(logging.Filter):
    """slack_sdk's Socket Mode client logs a traceback for every failed reconnect; during an
    outage that is one line each, with the reason."""

    def filter(self, record: logging.LogRecord) -> bool:
        if record.exc_info or "\n" in str(record.msg):
            record.msg, record.args = " ".join(record.getMessage().split()), None
            record.exc_info = record.exc_text = None
        return True


def socket_mode_logger() -> logging.Logger:
    logger = logging.getLogger("bot.socket_mode")
    if not any(isinstance(f, _OneLine) for f in logger.filters):
        logger.addFilter(_OneLine())
    return logger


class Runtime:
    """A process that serves Slack (role `all` or `slack`). Every such process receives events
    and calls the core; the one holding the board-writer lease also edits the board and sends
    the outbox (see surface.py)."""

    # The board-writer lease: its holder renews it every BOARD_RENEW_S; when it dies, a waiting
    # process takes over within about BOARD_TTL_S + BOARD_RENEW_S.
    BOARD_TTL_S = 6.0
    BOARD_RENEW_S = 1.5

    def __init__(self, node: Node, svc: Services, surface: Surface, health: SlackHealth):
        self.node, self.core, self.svc, self.surface, self.health = node, node.core, svc, surface, health
        self.app = build_app(svc, http_mode=not svc.settings.socket_mode)
        secret = svc.settings.signing_secret
        self.gate = Gate(self.core, secret.get_secret_value() if secret else None)
        self.board_writer = node.board_writer(on_gain=surface.start, on_loss=surface.stop, ttl_s=self.BOARD_TTL_S,
                                              interval_s=self.BOARD_RENEW_S)
        self.socket: GatedSocketModeHandler | None = None
        self.web_runner: web.AppRunner | None = None
        self.port: int | None = None
        self._watch: asyncio.Task | None = None
        self._http: aiohttp.ClientSession | None = None

    @property
    def poster(self):
        return self.surface.poster

    @classmethod
    async def start(cls, core_settings: Settings, slack: SlackSettings, role: Role | str = Role.ALL) -> "Runtime":
        node = await Node.open(core_settings, role)
        core = node.core
        health = SlackHealth()
        if slack.bot_token is None:
            raise ValueError("SLACK_BOT_TOKEN is not set")   # taskpin check stops this before start
        token, url = slack.bot_token.get_secret_value(), slack.api_base_url
        timeout_s, backoff_s = slack.slack_timeout_s, slack.slack_retry_base_s / 2
        http = http_session(timeout_s)
        client = make_client(token, url, retry_rate_limits=True, health=health, timeout_s=timeout_s,
                             backoff_s=backoff_s, session=http)
        paced = make_client(token, url, retry_rate_limits=False, health=health, timeout_s=timeout_s,
                            backoff_s=backoff_s, session=http)
        surface = Surface(core, slack, client, paced, team_url=lambda: health.team_url)
        svc = Services(core=core, settings=slack, client=client, board=surface.board, threads=surface.threads)
        surface.svc = svc
        core.pull_requests.task_link = lambda task_id: thread_url(core, task_id)   # a pull request links it too
        runtime = cls(node, svc, surface, health)
        runtime._http = http
        try:
            await health.probe(client)
            await runtime.board_writer.start()   # the board, threads and outbox, when no one else has them
            await core.start()      # recovery runs here; its events reach the board and threads
            await runtime._serve()
        except BaseException:
            await runtime.close()
            raise
        runtime._watch = asyncio.create_task(
            health.watch(client, idle_s=slack.slack_probe_interval_s,
                         retry_s=min(max(slack.slack_retry_base_s * 2, 0.2), slack.slack_retry_max_s)),
            name="slack-health")
        log.info("taskpin is running as %s (role %s, %s mode, board in %s%s)", node.name, node.role.value,
                 "Socket" if slack.socket_mode else "HTTP", slack.board_channel,
                 "" if runtime.board_writer.holding else "; another process edits it")
        return runtime

    async def _serve(self) -> None:
        slack = self.svc.settings
        web_app = web.Application()
        web_app.router.add_get("/healthz", self._healthz)
        if slack.socket_mode and slack.app_token is not None:
            self.socket = GatedSocketModeHandler(self.app, slack.app_token.get_secret_value(), self.gate,
                                                 logger=socket_mode_logger(),
                                                 ping_interval=slack.socket_ping_interval_s)
            await self.socket.connect_async()
        else:
            web_app.router.add_post("/slack/events", self._slack_events)
        self.web_runner = web.AppRunner(web_app, access_log=None)
        await self.web_runner.setup()
        site = web.TCPSite(self.web_runner, slack.http_host, slack.http_port)
        await site.start()
        # aiohttp keeps the listening server here; the port asked for may have been 0 (any)
        sockets = getattr(site._server, "sockets", None) or []
        self.port = sockets[0].getsockname()[1] if sockets else slack.http_port

    async def _slack_events(self, request: web.Request) -> web.Response:
        if self.gate.unsigned(request, await request.text()):   # before bolt: see bot/gate.py
            return web.json_response({"error": "invalid request"}, status=401)
        try:
            bolt_request = await to_bolt_request(request)
        except ValueError:
            return web.json_response({"error": "malformed body"}, status=400)
        if not await self.gate.admit(bolt_request.body):
            return web.Response(status=200)   # acked: malformed, or a retry of what was handled
        return await to_aiohttp_response(await self.app.async_dispatch(bolt_request))

    async def _healthz(self, request: web.Request) -> web.Response:
        """The database, and Slack as taskpin's recent calls found it (no call is made here)."""
        core = await self.core.health()
        checks: dict = {"database": core["database"], "slack": self.health.summary}
        healthy = self.health.ok and bool(core["ok"])
        if self.socket is not None:
            session = getattr(self.socket.client, "current_session", None)
            connected = session is not None and not session.closed
            if not connected:
                checks["slack"] = "disconnected"
            elif self.health.ok:
                checks["slack"] = "connected"
            healthy = healthy and connected
        checks["running_sessions"] = core["running_sessions"]
        checks["outbox_pending"] = self.surface.pending
        checks["worker"] = self.node.name
        checks["board_writer"] = self.board_writer.holding
        return web.json_response({"ok": healthy, **checks}, status=200 if healthy else 503)

    async def close(self) -> None:
        """Stop taking requests, bring the board up to date, then stop the agents and the store.
        Every step runs even when an earlier one fails: a half-closed runtime keeps agents alive."""
        steps = []
        if self._watch:
            self._watch.cancel()
        if self.socket:
            steps.append(("the Socket Mode connection", self.socket.close_async))
        if self.web_runner:
            steps.append(("the HTTP server", self.web_runner.cleanup))
        steps += [("the board", self.board_writer.close), ("the core", self.core.close),
                  ("the coordination", self.node.close)]
        if self._http is not None:
            steps.append(("the Slack connections", self._http.close))
        for what, step in steps:
            try:
                await step()
            except Exception:
                log.exception("could not close %s cleanly", what)
        self.socket = self.web_runner = None


class WorkerRuntime:
    """A process that runs agents and nothing of Slack (role `worker`). It serves /healthz on
    TASKPIN_HTTP_HOST:TASKPIN_HTTP_PORT, like a slack process."""

    def __init__(self, node: Node):
        self.node, self.core = node, node.core
        self.web_runner: web.AppRunner | None = None

    @classmethod
    async def start(cls, core_settings: Settings, slack: SlackSettings) -> "WorkerRuntime":
        node = await Node.open(core_settings, Role.WORKER)
        runtime = cls(node)
        try:
            await node.core.start()
            web_app = web.Application()
            web_app.router.add_get("/healthz", runtime._healthz)
            runtime.web_runner = web.AppRunner(web_app, access_log=None)
            await runtime.web_runner.setup()
            await web.TCPSite(runtime.web_runner, slack.http_host, slack.http_port).start()
        except BaseException:
            await runtime.close()
            raise
        log.info("taskpin worker %s is running (up to %d agents)", node.name, core_settings.max_concurrent_sessions)
        return runtime

    async def _healthz(self, request: web.Request) -> web.Response:
        checks = await self.core.health() if hasattr(self.core, "health") else {"ok": True}
        checks = {**checks, "worker": self.node.name, "running_sessions": self.core.running_sessions}
        return web.json_response(checks, status=200 if checks.get("ok") else 503)

    async def close(self) -> None:
        steps = [("the HTTP server", self.web_runner.cleanup)] if self.web_runner else []
        for what, step in steps + [("the core", self.core.close), ("the coordination", self.node.close)]:
            try:
                await step()
            except Exception:
                log.exception("could not close %s cleanly", what)


async def serve(core_settings: Settings, slack: SlackSettings, role: Role | str = Role.ALL) -> None:
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):   # before starting: a stop during start-up is not lost
        loop.add_signal_handler(sig, stop.set)
    role = Role(role)
    runtime: WorkerRuntime | Runtime
    if role is Role.WORKER:
        runtime = await WorkerRuntime.start(core_settings, slack)
    else:
        runtime = await Runtime.start(core_settings, slack, role)
    heap.settle()
    await stop.wait()
    log.info("taskpin is stopping")
    await runtime.close()
