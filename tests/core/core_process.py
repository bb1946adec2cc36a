"""Runs a taskpin core in its own process so a test can SIGKILL it mid-flight.

argv: settings.json  actions.json — settings are Settings(**json); actions is a list of
{"create": {...}, "dispatch": true} entries. Prints "READY <ids>" once all are dispatched.
"""
import asyncio
import json
import sys

from orchestrator import Orchestrator, Settings


async def main() -> None:
    settings = Settings(_env_file=None, **json.loads(open(sys.argv[1]).read()))
    actions = json.loads(open(sys.argv[2]).read())
    core = await Orchestrator.open(settings)
    await core.start()
    ids = []
    for action in actions:
        task = await core.create_task(**action["create"])
        ids.append(task.id)
        if action.get("dispatch"):
            await core.dispatch(task.id, actor=task.owner)
    print("READY", " ".join(map(str, ids)), flush=True)
    await asyncio.Event().wait()


asyncio.run(main())
