"""What every listener needs, injected into bolt's context by a middleware."""
from __future__ import annotations

from dataclasses import dataclass

from slack_sdk.web.async_client import AsyncWebClient

from orchestrator import Orchestrator

from .board_sync import BoardSync
from .settings import SlackSettings
from .threads import TaskThreads


@dataclass
class Services:
    core: Orchestrator
    settings: SlackSettings
    client: AsyncWebClient
    board: BoardSync
    threads: TaskThreads

    @property
    def channel(self) -> str:
        return self.settings.board_channel or ""


def services_of(context) -> Services:
    return context["taskpin"]
