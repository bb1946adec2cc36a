"""7. Start-up: Runtime.start (store opened and migrated, recovery, board reconciled with the stored
message: chat.update + pins.list, Socket Mode connected) until the emulator sees the socket, with
1000 tasks in the store. Baseline: the same with an empty store. A first start (not timed) posts
and pins the board; the timed ones are restarts, as after a deploy."""
from __future__ import annotations

import tempfile
import time
from pathlib import Path

from bot.emulator import SlackEmulator
from bot.runtime import Runtime

from .harness import (
    Figure,
    agent,
    core_settings,
    make_repo,
    ms,
    pct,
    progress,
    seed_tasks,
    slack_settings,
    wait_until,
)
from .stores import fresh_database

NAME = "startup"


async def restarts(tasks: int, samples: int) -> list[float]:
    with tempfile.TemporaryDirectory(prefix="taskpin-bench-start-") as tmp:
        root = Path(tmp)
        async with fresh_database(root) as database_url, SlackEmulator(rate_limits=True) as emu:
            settings = core_settings(root, make_repo(root / "repo"), {"starter": agent("starter")},
                                     database_url=database_url)
            await seed_tasks(settings, tasks)
            times = []
            for i in range(samples + 1):
                t = time.perf_counter()
                runtime = await Runtime.start(settings, slack_settings(emu))
                await emu.wait_socket()
                if i:
                    times.append(time.perf_counter() - t)
                await runtime.close()
                await wait_until(lambda: not emu.dispatcher.socket.live, timeout=10)
        return times


async def run(quick: bool) -> list[Figure]:
    tasks, samples = (100, 2) if quick else (1000, 5)
    empty = await restarts(0, samples)
    full = await restarts(tasks, samples)
    progress(f"start-up: empty {empty}, {tasks} tasks {full}")
    base = dict(baseline_name="empty store", samples=samples)
    return [
        Figure(f"start-up with {tasks} tasks, p50", ms(pct(full, 50)), "ms", baseline=ms(pct(empty, 50)), **base),
        Figure(f"start-up with {tasks} tasks, max", ms(max(full)), "ms", baseline=ms(max(empty)), **base),
    ]
