"""What every listener needs, injected into bolt's context by a middleware."""
from __future__ import annotations

from collections import OrderedDict
from dataclasses import dataclass, field

from slack_sdk.web.async_client import AsyncWebClient

from orchestrator import Orchestrator

from .board_sync import BoardSync
from .settings import SlackSettings
from .threads import TaskThreads


class SeenIds:
    """Remembers recent delivery ids so a retried or redelivered event has one effect."""

    def __init__(self, size: int = 5000):
        self._ids: OrderedDict[str, None] = OrderedDict()
        self._size = size

    def first_time(self, key: str | None) -> bool:
        if not key:
            return True
        if key in self._ids:
            return False
        self._ids[key] = None
        if len(self._ids) > self._size:
            self._ids.popitem(last=False)
        return True


@dataclass
class Services:
    core: Orchestrator
    settings: SlackSettings
    client: AsyncWebClient
    board: BoardSync
    threads: TaskThreads
    seen: SeenIds = field(default_factory=SeenIds)

    @property
    def channel(self) -> str:
        return self.settings.board_channel or ""


def services_of(context) -> Services:
    return context["taskpin"]
