"""Processes starting at once on a fresh PostgreSQL database: one upgrades, the others wait."""
from __future__ import annotations

import asyncio
import sys

from alembic.script import ScriptDirectory

from orchestrator.store import make_engine, migrate
from tests.cli_helpers import ROOT, clean_env

HEAD = ScriptDirectory.from_config(migrate.alembic_config()).get_current_head()


async def test_three_processes_upgrading_one_fresh_database_at_once_all_succeed(pg_url, tmp_path):
    code = ("import asyncio, sys\n"
            "from orchestrator.store import make_engine, migrate\n"
            "async def main():\n"
            "    engine = make_engine(sys.argv[1])\n"
            "    await migrate.upgrade(engine)\n"
            "    await engine.dispose()\n"
            "asyncio.run(main())\n")
    procs = [await asyncio.create_subprocess_exec(sys.executable, "-c", code, pg_url, cwd=ROOT, env=clean_env(),
                                                  stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.STDOUT)
             for _ in range(3)]
    outputs = [(await p.communicate())[0].decode() for p in procs]
    assert [p.returncode for p in procs] == [0, 0, 0], "\n".join(outputs)
    engine = make_engine(pg_url)
    try:
        assert await migrate.current_revision(engine) == HEAD
    finally:
        await engine.dispose()
