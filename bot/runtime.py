"""`taskpin run`: the core, the board, the task threads and the bolt app, in Socket Mode or HTTP mode."""
from __future__ import annotations

import asyncio
import logging
import signal

from aiohttp import web
from slack_bolt.adapter.aiohttp import to_aiohttp_response, to_bolt_request

from orchestrator import Orchestrator, Settings

from .app import build_app
from .board_sync import BoardSync
from .budget import Backoff, MethodBudget
from .gate import Gate, GatedSocketModeHandler
from .home import publish_home
from .notify import OwnerNotifier
from .poster import ChannelPoster
from .services import Services
from .settings import SlackSettings
from .slack_client import make_client
from .slack_health import SlackHealth
from .threads import TaskThreads, thread_url
from .workflow_notes import WorkflowNotes

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
    def __init__(self, core: Orchestrator, svc: Services, poster: ChannelPoster, health: SlackHealth):
        self.core, self.svc, self.poster, self.health = core, svc, poster, health
        # approval-policy digests (at the output summaries' pace) and failed dependencies, in threads
        self.workflow_notes = WorkflowNotes(core, svc.threads, interval_s=svc.settings.output_summary_interval_s)
        self.app = build_app(svc, http_mode=not svc.settings.socket_mode)
        secret = svc.settings.signing_secret
        self.gate = Gate(core, secret.get_secret_value() if secret else None)
        self.socket: GatedSocketModeHandler | None = None
        self.web_runner: web.AppRunner | None = None
        self.port: int | None = None
        self._watch: asyncio.Task | None = None
        self.notifier: OwnerNotifier | None = None

    @classmethod
    async def start(cls, core_settings: Settings, slack: SlackSettings) -> "Runtime":
        core = await Orchestrator.open(core_settings)
        health = SlackHealth()
        token, url = slack.bot_token.get_secret_value(), slack.api_base_url
        options = dict(health=health, timeout_s=slack.slack_timeout_s, backoff_s=slack.slack_retry_base_s / 2)
        client = make_client(token, url, retry_rate_limits=True, **options)
        paced = make_client(token, url, retry_rate_limits=False, **options)
        channel = slack.board_channel or ""
        updates = MethodBudget(per_minute=slack.chat_update_per_minute)   # chat.update: board + threads
        poster = ChannelPoster(paced, core.outbox, update_budget=updates, backoff_s=slack.slack_retry_base_s,
                               backoff_max_s=slack.slack_retry_max_s)
        threads = TaskThreads(core, client, poster, channel, output_interval_s=slack.output_summary_interval_s,
                              workspace_url=slack.workspace_url, team_url=lambda: health.team_url)
        board = BoardSync(core, paced, channel, interval_s=slack.board_sync_interval_s, naive=slack.board_naive_sync,
                          update_budget=updates, backoff=Backoff(slack.slack_retry_base_s, slack.slack_retry_max_s))
        threads.on_thread_started.append(lambda _task_id: board.mark_dirty())   # the card links its thread
        core.pull_requests.task_link = lambda task_id: thread_url(core, task_id)   # a pull request links it too
        svc = Services(core=core, settings=slack, client=client, board=board, threads=threads)
        notifier = OwnerNotifier(core, client, poster, home=lambda user: publish_home(svc, user, quiet=True))
        runtime = cls(core, svc, poster, health)
        runtime.notifier = notifier
        try:
            await health.probe(client)
            await poster.start()    # what a previous run left unsent goes first
            await threads.start()
            await notifier.start()
            await runtime.workflow_notes.start()
            await board.start()
            await core.start()      # recovery runs here; its events reach the board and threads
            await runtime._serve()
        except BaseException:
            await runtime.close()
            raise
        runtime._watch = asyncio.create_task(
            health.watch(client, idle_s=slack.slack_probe_interval_s,
                         retry_s=min(max(slack.slack_retry_base_s * 2, 0.2), slack.slack_retry_max_s)),
            name="slack-health")
        log.info("taskpin is running (%s mode, board in %s)", "Socket" if slack.socket_mode else "HTTP", channel)
        return runtime

    async def _serve(self) -> None:
        slack = self.svc.settings
        web_app = web.Application()
        web_app.router.add_get("/healthz", self._healthz)
        if slack.socket_mode:
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
        self.port = site._server.sockets[0].getsockname()[1]

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
        checks["outbox_pending"] = self.poster.pending
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
        if self.notifier:
            steps.append(("the owner notifications", self.notifier.close))
        steps += [("the board", self.svc.board.close), ("the workflow notes", self.workflow_notes.close),
                  ("the task threads", self.svc.threads.close),
                  ("the poster", self.poster.close), ("the core", self.core.close)]
        for what, step in steps:
            try:
                await step()
            except Exception:
                log.exception("could not close %s cleanly", what)
        self.socket = self.web_runner = None


async def serve(core_settings: Settings, slack: SlackSettings) -> None:
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):   # before starting: a stop during start-up is not lost
        loop.add_signal_handler(sig, stop.set)
    runtime = await Runtime.start(core_settings, slack)
    await stop.wait()
    log.info("taskpin is stopping")
    await runtime.close()
