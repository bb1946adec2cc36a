"""The event path under load: a flood of agent output waits in the agent's pipe (not in taskpin's
memory), every line still arrives in order, and usage is written in batches with nothing lost."""
from __future__ import annotations

import sys

import pytest
from sqlalchemy import event

from orchestrator import AgentOutput, TaskState, UsageReported
from orchestrator.config import AgentConfig
from orchestrator.harness import OutputText
from orchestrator.harness.command import CommandHarness
from orchestrator.harness.session import QUEUED_LIMIT
from orchestrator.usage import UsageWriter

from .helpers import Recorder, make_settings, scripted, started, wait_state, wait_until

LINES = 100_000   # ~4 MB: far more than the pipe and the reader's buffer hold
FLOOD = f"""
import json, pathlib, sys
sys.stdin.readline()
for i in range({LINES}):
    sys.stdout.write(json.dumps({{"type": "output", "text": f"line {{i}}"}}) + "\\n")
sys.stdout.flush()
pathlib.Path("written").touch()
print(json.dumps({{"type": "finished", "summary": "all written"}}), flush=True)
"""


async def test_a_flood_of_output_blocks_the_agent_until_taskpin_reads_it(tmp_path):
    from orchestrator.harness import SessionSpec

    harness = CommandHarness(AgentConfig(kind="command", command=[sys.executable, "-c", FLOOD], stop_grace_s=1))
    workdir = tmp_path / "wt"
    workdir.mkdir()
    session = await harness.start(SessionSpec(task_id=1, workdir=workdir, prompt="go"))
    try:
        await wait_until(lambda: session.out.queued >= QUEUED_LIMIT, timeout=20, what="the session's queue to fill")
        # Nobody reads: the queue stops at its limit and the agent is stuck writing into its pipe.
        assert session.out.queued <= QUEUED_LIMIT
        assert not (workdir / "written").exists()

        texts = []
        async for ev in session.events():
            if isinstance(ev, OutputText):
                texts.append(ev.text)
            assert session.out.queued <= QUEUED_LIMIT
        assert texts == [f"line {i}" for i in range(LINES)]    # nothing lost, in order
        assert (workdir / "written").exists()
    finally:
        await session.stop()


async def test_output_and_usage_of_many_agents_arrive_whole_with_few_store_writes(tmp_path, git_repo, db_url):
    lines = [f"out {i}" for i in range(2000)]
    usage = '{"type": "usage", "input_tokens": 3, "output_tokens": 1, "cost_usd": 0.001}'
    text = [line if i % 10 else usage for i, line in enumerate(lines, start=1)]
    steps = [step for k in range(10) for step in ({"print": "\n".join(text[k * 200:(k + 1) * 200])}, {"sleep": 0.2})]
    agents, usage_lines = 10, 200
    settings = make_settings(tmp_path, git_repo, {"bot": scripted([*steps, {"finish": "done"}])},
                             db_url=db_url, max_concurrent_sessions=agents)
    core = await started(settings)
    rec = Recorder(core)
    statements = []
    event.listen(core.store.engine.sync_engine, "before_cursor_execute",
                 lambda _c, _cur, stmt, *_: statements.append(stmt))
    try:
        ids = [(await core.create_task(prompt=f"flood {i}", owner="U1")).id for i in range(agents)]
        for task_id in ids:
            await core.dispatch(task_id, actor="U1")
        for task_id in ids:
            task = await wait_state(core, task_id, TaskState.AWAITING_REVIEW)
            assert (task.input_tokens, task.output_tokens) == (3 * usage_lines, usage_lines)
            assert task.cost_usd == pytest.approx(0.001 * usage_lines)
            logged = [line for line in core.tail_log(task_id, 5000) if line.startswith("out ")]
            assert logged == [line for i, line in enumerate(lines, start=1) if i % 10]
        await wait_until(lambda: len({e.task_id for e in rec.of(UsageReported)}) == agents, what="usage events")
        for task_id in ids:
            delivered = [line for e in rec.of(AgentOutput) if e.task_id == task_id for line in e.text.splitlines()]
            assert delivered == [line for i, line in enumerate(lines, start=1) if i % 10]
        # 20,000 lines, 2,000 of them usage, over ~2 s: the runs share each usage write (one per
        # interval, plus each run's last one), where one write per run per interval would be ~50.
        usage_writes = [s for s in statements if s.lstrip().upper().startswith("UPDATE TASKS SET INPUT_TOKENS")]
        assert len(usage_writes) < 2.5 * agents, len(usage_writes)
    finally:
        await core.close()


async def test_usage_of_every_task_goes_in_one_write_and_a_failed_write_loses_nothing(tmp_path, git_repo):
    settings = make_settings(tmp_path, git_repo, {"bot": scripted([{"finish": "done"}])})
    core = await started(settings)
    rec = Recorder(core)
    try:
        ids = [(await core.create_task(prompt=f"t {i}", owner="U1")).id for i in range(20)]
        writer = UsageWriter(core.store, core.bus, interval_s=3600)   # flushed by hand here
        commits = []
        event.listen(core.store.engine.sync_engine, "commit", lambda _conn: commits.append(1))
        real = core.store.add_usage_many

        async def unreachable(_deltas):
            raise ConnectionError("database unreachable")

        core.store.add_usage_many = unreachable
        for task_id in ids:
            writer.add(task_id, None, 10, 2, 0.5)
        with pytest.raises(ConnectionError):
            await writer.flush()
        core.store.add_usage_many = real
        for task_id in ids:
            writer.add(task_id, None, 1, 1, 0.25)
        await writer.flush()
        assert len(commits) == 1
        for task_id in ids:
            task = await core.get_task(task_id)
            assert (task.input_tokens, task.output_tokens, task.cost_usd) == (11, 3, 0.75)
        await wait_until(lambda: len(rec.of(UsageReported)) == 20, what="one UsageReported per task")
        assert {e.task_id: e.input_tokens for e in rec.of(UsageReported)} == dict.fromkeys(ids, 11)
    finally:
        await core.close()
