"""Runs a core in its own process and approves one task, so a test can kill -9 it mid-approval.

argv: settings.json task_id actor. With TASKPIN_CRASH_AT=approve.claimed (or approve.acted) the
process SIGKILLs itself at that point of the approval; otherwise it prints "APPROVED".
"""
import asyncio
import json
import sys

from orchestrator import Orchestrator, Settings


async def main() -> None:
    settings = Settings(_env_file=None, **json.loads(open(sys.argv[1]).read()))
    core = await Orchestrator.open(settings)
    await core.start()
    await core.approve(int(sys.argv[2]), actor=sys.argv[3])
    print("APPROVED", flush=True)
    await core.close()


asyncio.run(main())
