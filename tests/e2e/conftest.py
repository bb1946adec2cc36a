"""End-to-end fixtures: the Slack emulator, and the real taskpin runtime connected to it."""
from __future__ import annotations

import contextlib

import pytest

from bot.emulator import SlackEmulator
from bot.runtime import Runtime
from bot.settings import SlackSettings
from tests.core.helpers import make_settings, scripted

BOARD = "C_BOARD"
OWNER, OTHER, APPROVER = "U_OWNER", "U_OTHER", "U_APPROVER"


def slack_settings(emu: SlackEmulator, *, socket: bool = True, **overrides) -> SlackSettings:
    values = dict(SLACK_BOT_TOKEN=emu.bot_token, SLACK_API_URL=emu.api_url, TASKPIN_BOARD_CHANNEL=BOARD,
                  TASKPIN_HTTP_HOST="127.0.0.1", TASKPIN_HTTP_PORT=0, TASKPIN_BOARD_SYNC_INTERVAL_S=0.2,
                  TASKPIN_OUTPUT_SUMMARY_INTERVAL_S=0.5)
    if socket:
        values["SLACK_APP_TOKEN"] = emu.app_token
    else:
        values["SLACK_SIGNING_SECRET"] = emu.signing_secret
    values.update(overrides)
    return SlackSettings(_env_file=None, **values)


@pytest.fixture
async def emu():
    async with SlackEmulator(rate_limits=True, ack_timeout=3.0) as e:
        yield e


class Taskpin:
    """Starts and restarts the real runtime against the emulator."""

    def __init__(self, emu, tmp_path, repo):
        self.emu, self.tmp_path, self.repo = emu, tmp_path, repo
        self.runtime: Runtime | None = None

    async def start(self, agents: dict[str, dict] | None = None, *, socket: bool = True, slack: dict | None = None,
                    **core_overrides) -> Runtime:
        agents = agents or {"bot": scripted([{"finish": "done"}])}
        core_overrides.setdefault("approvers", [APPROVER])
        settings = make_settings(self.tmp_path, self.repo, agents, **core_overrides)
        self.runtime = await Runtime.start(settings, slack_settings(self.emu, socket=socket, **(slack or {})))
        if socket:
            await self.emu.wait_socket()
        else:
            self.emu.set_request_url(f"http://127.0.0.1:{self.runtime.port}/slack/events")
        return self.runtime

    async def stop(self) -> None:
        if self.runtime:
            await self.runtime.close()
            self.runtime = None

    @property
    def core(self):
        return self.runtime.core


@pytest.fixture
async def taskpin(emu, tmp_path, git_repo):
    tp = Taskpin(emu, tmp_path, git_repo)
    yield tp
    with contextlib.suppress(Exception):
        await tp.stop()
