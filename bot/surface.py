"""What only one `slack` process does at a time: edit the board, write the task threads into the
outbox and send the outbox at Slack's pace (chat.postMessage and chat.update budgets are per app,
so two processes must not spend them twice).

The process holding the board-writer lease builds the three and starts them; when it loses the
lease (or stops) it closes them. Every process keeps serving Slack's events meanwhile: what they
change reaches the holder through the journal (see orchestrator/coordination/relay.py).
"""
from __future__ import annotations

import logging
from collections.abc import Callable

from slack_sdk.web.async_client import AsyncWebClient

from orchestrator import Lease, Orchestrator

from .board_sync import BoardSync
from .budget import Backoff, MethodBudget
from .home import publish_home
from .notify import OwnerNotifier
from .poster import ChannelPoster
from .services import Services
from .settings import SlackSettings
from .threads import TaskThreads
from .workflow_notes import WorkflowNotes

log = logging.getLogger(__name__)


class Surface:
    def __init__(self, core: Orchestrator, slack: SlackSettings, client: AsyncWebClient, paced: AsyncWebClient,
                 team_url: Callable[[], str | None]):
        self.core, self.slack, self.client, self.paced, self.team_url = core, slack, client, paced, team_url
        self.active = False
        self.svc: Services | None = None     # set by the runtime; its board and threads follow ours
        self.poster: ChannelPoster | None = None
        self._build()

    def _build(self) -> None:
        """The board, the threads, the owners' DMs and the workflow notes, all over one poster."""
        slack, core = self.slack, self.core
        channel = slack.board_channel or ""
        updates = MethodBudget(per_minute=slack.chat_update_per_minute)   # chat.update: board + threads
        poster = ChannelPoster(self.paced, core.outbox, update_budget=updates, backoff_s=slack.slack_retry_base_s,
                               backoff_max_s=slack.slack_retry_max_s)
        threads = TaskThreads(core, self.client, poster, channel, output_interval_s=slack.output_summary_interval_s,
                              workspace_url=slack.workspace_url, team_url=self.team_url)
        board = BoardSync(core, self.paced, channel, interval_s=slack.board_sync_interval_s,
                          naive=slack.board_naive_sync, update_budget=updates,
                          backoff=Backoff(slack.slack_retry_base_s, slack.slack_retry_max_s))
        threads.on_thread_started.append(lambda _task_id: board.mark_dirty())   # the card links its thread
        self.poster, self.threads, self.board = poster, threads, board
        self.notifier = OwnerNotifier(core, self.client, poster, home=self._publish_home)
        # approval-policy digests (at the output summaries' pace) and failed dependencies, in threads
        self.notes = WorkflowNotes(core, threads, interval_s=slack.output_summary_interval_s)

    async def _publish_home(self, user: str) -> None:
        if self.svc is not None:
            await publish_home(self.svc, user, quiet=True)

    async def start(self, lease: Lease | None = None) -> None:
        """This process writes the board now: what is left in the outbox goes first, then the
        events from where the previous holder stopped, then the board."""
        if self.active:
            return
        if self.poster is None:
            self._build()
            if self.svc is not None:
                self.svc.board, self.svc.threads = self.board, self.threads
        self.active = True
        if lease is not None and lease.token > 1:    # said first: the board may be edited before start() returns
            log.info("took over the board (lease token %d)", lease.token)
        assert self.poster is not None
        await self.poster.start()
        await self.threads.start()
        await self.notifier.start()
        await self.notes.start()
        await self.board.start()

    async def stop(self) -> None:
        """Another process writes the board now (or this one stops)."""
        if not self.active:
            return
        self.active = False
        assert self.poster is not None
        for what, step in (("the board", self.board.close), ("the owner notifications", self.notifier.close),
                           ("the workflow notes", self.notes.close), ("the task threads", self.threads.close),
                           ("the poster", self.poster.close)):
            try:
                await step()
            except Exception:
                log.exception("could not close %s cleanly", what)
        self.poster = None        # a later takeover builds fresh ones

    @property
    def pending(self) -> int:
        return self.poster.pending if self.active and self.poster is not None else 0
