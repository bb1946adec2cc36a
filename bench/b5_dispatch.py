"""5. Dispatch cost on a 10k-file repository: click -> agent process started, against a bare
`git worktree add` of the same repository as the floor (samples interleaved).

taskpin: the time of the Dispatch click until the `starter` agent's first statement (it writes
time.time() before importing anything; python -S). The floor is `git worktree add --no-track -b`
from main, the command taskpin's worktree creation ends with.
"""
from __future__ import annotations

import asyncio
import tempfile
import time
from pathlib import Path

from bot.ids import ActionId, make_action_id

from .b3_ack import has_button
from .harness import BOARD, OWNER, Figure, agent, ms, pct, progress, stack, wait_until

NAME = "dispatch"


def started_at(path: Path, task_id: int) -> float | None:
    if not path.exists():
        return None
    return next((float(t) for i, t in (line.split() for line in path.read_text().splitlines()) if int(i) == task_id), None)


async def run(quick: bool) -> list[Figure]:
    files, samples = (300, 2) if quick else (10_000, 7)
    with tempfile.TemporaryDirectory(prefix="taskpin-bench-dispatch-") as tmp:
        marks = Path(tmp) / "started"
        async with stack({"starter": agent("starter", BENCH_START_FILE=marks)}, files=files) as st:
            progress(f"repository of {files} files ready")
            floor, taskpin = [], []
            for i in range(samples):
                t = time.perf_counter()
                proc = await asyncio.create_subprocess_exec(
                    "git", "worktree", "add", "-q", "--no-track", "-b", f"floor/{i}", str(Path(tmp) / f"floor{i}"),
                    "refs/heads/main", cwd=st.repo)
                await proc.wait()
                floor.append(time.perf_counter() - t)

                task = await st.core.create_task(prompt=f"dispatch sample {i}", owner=OWNER)
                action_id = make_action_id(ActionId.DISPATCH, task.id)
                await wait_until(lambda: has_button(st.emu, st.board_ts(), action_id), timeout=15)
                clicked = time.time()
                await st.emu.click_button(OWNER, BOARD, st.board_ts(), action_id, str(task.id))
                began = await wait_until(lambda: started_at(marks, task.id), timeout=60)
                taskpin.append(began - clicked)
    ratio = pct(taskpin, 50) / pct(floor, 50)
    return [
        Figure("click -> agent started, p50", ms(pct(taskpin, 50)), "ms", baseline=ms(pct(floor, 50)),
               baseline_name="git worktree add", samples=samples),
        Figure("click -> agent started, p99", ms(pct(taskpin, 99)), "ms", baseline=ms(pct(floor, 99)),
               baseline_name="git worktree add", samples=samples),
        Figure("dispatch / git worktree add (medians)", round(ratio, 2), "x", "<= 1.3",
               notes=f"{files} files; taskpin's time includes the ack, the store, `git worktree prune` + list, "
                     f"the worktree, the process spawn and the agent's Python start-up"),
    ]
