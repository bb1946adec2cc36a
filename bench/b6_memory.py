"""6. Memory: resident size (VmRSS) of a taskpin process with 1000 tasks in the store and 50 live
agent sessions, and the increment per session.

taskpin runs alone in a child process (bench/child.py: the real Runtime, Socket Mode to the
emulator in this process); sessions are `starter` agents that stay alive. RSS is read from
/proc/<pid>/status 1 s after each step. Baseline: the same process with an empty store.
"""
from __future__ import annotations

import asyncio
import json
import sys
import tempfile
from pathlib import Path

from bot.emulator import SlackEmulator

from .harness import Figure, make_repo, progress
from .stores import fresh_database

NAME = "memory"
ROOT = Path(__file__).resolve().parent.parent


async def child_rss(emu: SlackEmulator, tasks: int, steps: list[int]) -> list[tuple[int, float]]:
    with tempfile.TemporaryDirectory(prefix="taskpin-bench-mem-") as tmp:
        async with fresh_database(Path(tmp)) as database_url:
            return await _measure(emu, tasks, steps, tmp, database_url)


async def _measure(emu: SlackEmulator, tasks: int, steps: list[int], tmp: str, database_url: str):
    cfg = {"database_url": database_url, "root": tmp, "repo": str(make_repo(Path(tmp) / "repo")), "tasks": tasks,
           "bot_token": emu.bot_token, "app_token": emu.app_token, "api_url": emu.api_url}
    proc = await asyncio.create_subprocess_exec(sys.executable, "-m", "bench.child", json.dumps(cfg), cwd=ROOT,
                                                stdin=asyncio.subprocess.PIPE, stdout=asyncio.subprocess.PIPE)
    points = []
    try:
        for i, step in enumerate(steps):
            if i:
                proc.stdin.write(f"dispatch {step - steps[i - 1]}\n".encode())
                await proc.stdin.drain()
            row = json.loads(await asyncio.wait_for(proc.stdout.readline(), timeout=120))
            points.append((row["sessions"], row["rss_mb"]))
        proc.stdin.write(b"quit\n")
        await proc.stdin.drain()
        await asyncio.wait_for(proc.wait(), timeout=30)
    finally:
        if proc.returncode is None:
            proc.kill()
            await proc.wait()
    return points


def slope(points: list[tuple[int, float]]) -> float:
    n = len(points)
    mx, my = sum(x for x, _ in points) / n, sum(y for _, y in points) / n
    return sum((x - mx) * (y - my) for x, y in points) / sum((x - mx) ** 2 for x, _ in points)


async def run(quick: bool) -> list[Figure]:
    tasks, steps = (100, [0, 2, 4]) if quick else (1000, [0, 10, 20, 30, 40, 50])
    empty = [(0, None)]
    if not quick:                                   # the smoke run skips the baseline process
        async with SlackEmulator(rate_limits=True) as emu:
            empty = await child_rss(emu, 0, [0])
        progress(f"empty store: {empty[0][1]:.0f} MB")
    async with SlackEmulator(rate_limits=True) as emu:
        points = await child_rss(emu, tasks, steps)
    progress(f"RSS by live sessions: {points}")
    return [
        Figure(f"RSS, {tasks} tasks, {steps[-1]} live sessions", round(points[-1][1], 1), "MB", "<= 150",
               baseline=empty[0][1] and round(empty[0][1], 1), baseline_name="empty store, no session",
               notes="points (sessions, MB): " + ", ".join(f"({s}, {m:.1f})" for s, m in points)),
        Figure(f"RSS, {tasks} tasks, no session", round(points[0][1], 1), "MB"),
        Figure("RSS increment per live session", round(slope(points), 2), "MB/session",
               notes="least-squares slope over the points; the agent processes' own memory is not counted"),
    ]
