"""A taskpin process on its own, for the memory benchmark: `python -m bench.child CONFIG_JSON`.

Seeds the store, starts the runtime against the emulator named in the config, prints
{"sessions": N, "rss_mb": ...} lines; stdin commands: `dispatch N` (then waits for N more live
sessions and 1 s), `quit`.
"""
from __future__ import annotations

import asyncio
import json
import sys
from pathlib import Path
from types import SimpleNamespace

from bot.runtime import Runtime

from .harness import OWNER, agent, core_settings, live_sessions, rss_mb, seed_tasks, slack_settings, wait_until


def say(**kw) -> None:
    print(json.dumps(kw), flush=True)


async def main(cfg: dict) -> None:
    settings = core_settings(Path(cfg["root"]), Path(cfg["repo"]), {"starter": agent("starter")},
                             database_url=cfg["database_url"])
    if cfg["tasks"]:
        await seed_tasks(settings, cfg["tasks"])
    emu = SimpleNamespace(bot_token=cfg["bot_token"], app_token=cfg["app_token"], api_url=cfg["api_url"])
    runtime = await Runtime.start(settings, slack_settings(emu))
    core = runtime.core
    backlog = [t.id for t in await core.list_tasks()]
    await asyncio.sleep(1.0)
    say(sessions=0, rss_mb=rss_mb())
    loop = asyncio.get_running_loop()
    while line := await loop.run_in_executor(None, sys.stdin.readline):
        cmd, *args = line.split()
        if cmd == "quit":
            break
        n = int(args[0])
        for task_id in backlog[:n]:
            await core.dispatch(task_id, actor=OWNER)
        backlog = backlog[n:]
        want = len(core._runners)
        await wait_until(lambda: live_sessions(core) >= want, timeout=60)
        await asyncio.sleep(1.0)
        say(sessions=live_sessions(core), rss_mb=rss_mb())
    await runtime.close()


if __name__ == "__main__":
    asyncio.run(main(json.loads(sys.argv[1])))
