"""Fault-suite fixtures: the emulator with its fault layer, taskpin with short backoff settings, and
a capture of everything taskpin logs (a traceback anywhere fails the test)."""
from __future__ import annotations

import contextlib
import logging
import os

import aiohttp
import pytest

from bot.emulator import SlackEmulator
from tests.e2e.conftest import Taskpin

# Short waits, so that each fault test takes a few seconds: retries from 0.1 s doubling to 0.5 s,
# a 1 s client timeout, health probes every 0.5 s, Socket Mode pings (and reconnects) every 0.5 s.
FAST_SLACK = {"TASKPIN_SLACK_RETRY_BASE_S": "0.1", "TASKPIN_SLACK_RETRY_MAX_S": "0.5",
              "TASKPIN_SLACK_TIMEOUT_S": "1", "TASKPIN_SLACK_PROBE_INTERVAL_S": "0.5",
              "TASKPIN_SOCKET_PING_INTERVAL_S": "0.5"}
ROUNDS = max(1, int(os.environ.get("TASKPIN_FAULT_ROUNDS", "1")))   # repeat each scenario this often


class FaultyTaskpin(Taskpin):
    async def start(self, agents=None, *, socket: bool = True, slack: dict | None = None, **core):
        return await super().start(agents, socket=socket, slack={**FAST_SLACK, **(slack or {})}, **core)


@pytest.fixture
async def emu():
    async with SlackEmulator(rate_limits=True, ack_timeout=3.0) as e:
        yield e


@pytest.fixture
async def taskpin(emu, tmp_path, git_repo):
    tp = FaultyTaskpin(emu, tmp_path, git_repo)
    yield tp
    with contextlib.suppress(Exception):
        await tp.stop()


class LogCapture(logging.Handler):
    """Every record taskpin (and the Slack libraries it runs) logs, formatted as it would print."""

    def __init__(self) -> None:
        super().__init__(logging.DEBUG)
        self.setFormatter(logging.Formatter("%(levelname)s %(name)s: %(message)s"))
        self.lines: list[str] = []
        self.records: list[logging.LogRecord] = []

    def emit(self, record: logging.LogRecord) -> None:
        if record.name.startswith(("bot", "orchestrator", "slack_bolt", "slack_sdk", "asyncio")):
            self.records.append(record)
            self.lines.append(self.format(record))

    @property
    def text(self) -> str:
        return "\n".join(self.lines)

    def assert_no_traceback(self) -> None:
        assert "Traceback" not in self.text, self.text[-6000:]
        tracebacks = [r for r in self.records if r.exc_info and r.levelno >= logging.INFO]
        assert not tracebacks, [f"{r.name}: {r.getMessage()}" for r in tracebacks]

    def warnings(self, needle: str) -> list[str]:
        return [line for line, r in zip(self.lines, self.records) if r.levelno >= logging.WARNING and needle in line]


@pytest.fixture
def taskpin_log():
    capture = LogCapture()
    root = logging.getLogger()
    old_level = root.level
    root.addHandler(capture)
    root.setLevel(logging.DEBUG)
    try:
        yield capture
    finally:
        root.removeHandler(capture)
        root.setLevel(old_level)


async def healthz(port: int) -> tuple[int, dict]:
    async with aiohttp.ClientSession() as http:
        async with http.get(f"http://127.0.0.1:{port}/healthz") as resp:
            return resp.status, await resp.json()


async def wait_health(emu, port: int, ok: bool, timeout: float = 10.0) -> dict:
    async def check():
        status, body = await healthz(port)
        return body if (status == 200) == ok and body["ok"] is ok else None
    try:
        return await emu.wait_for(check, timeout=timeout, interval=0.05)
    except TimeoutError:
        raise AssertionError(f"/healthz never said ok={ok}; it says {await healthz(port)}") from None
