"""`taskpin dev`: start the session and the page, print the address, stop cleanly on Ctrl-C or SIGTERM."""
from __future__ import annotations

import asyncio
import errno
import logging
import signal
import sys

from .page import LOOPBACK, DevPage
from .session import DevOptions, DevSession, RepoProblem, describe_repo


def _say(text: str) -> None:
    print(text, flush=True)


async def run_dev(options: DevOptions, *, host: str = "127.0.0.1", port: int = 8765) -> int:
    if options.repo is not None:
        try:
            describe_repo(options.repo)
        except RepoProblem as exc:
            print(f"taskpin dev: {exc}", file=sys.stderr)
            return 1
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    logging.basicConfig(level=logging.WARNING, format="%(levelname)s %(name)s: %(message)s")
    _say("taskpin dev: starting a local Slack emulator, the bot, a throwaway store"
         + (" and a throwaway repository…" if options.repo is None else f" and {options.repo}…"))
    session = DevSession(options)
    page = None
    try:
        await session.start()
        page = DevPage(session, host, port)
        try:
            await page.start()
        except OSError as exc:
            if exc.errno == errno.EADDRINUSE:
                print(f"taskpin dev: port {port} is in use; pick another with --port (0: any free port)", file=sys.stderr)
                return 1
            raise
        _say(f"taskpin dev: open {page.url}")
        if host in LOOPBACK:
            _say(f"  It listens on {host} only: nobody else can reach it. Ctrl-C stops it.")
        else:
            _say(f"  It listens on {host}: anyone who can reach that address can act as any user. Ctrl-C stops it.")
        _say(f"  repository: {session.repo_name} ({session.repo_path}) · agent: {session.agent_name}"
             " · people: alice, bob, carol (approver)")
        await stop.wait()
    finally:
        _say("taskpin dev: stopping…")
        if page is not None:
            await page.stop()
        await session.close()
        for sig in (signal.SIGINT, signal.SIGTERM):
            loop.remove_signal_handler(sig)
    _say("taskpin dev: stopped")
    return 0
