"""2. Intervention round trip with 1, 10 and 50 agents blocking at once.

Each `asker` agent waits for a go-file, then writes its question and notes the time (epoch). 
ask -> thread: that time until the owner-mention message exists in the emulator's thread (its
server-side ts). The owner then replies in every thread at once (emu.user_message).
reply -> agent: the reply's server-side ts until the agent process has read the answer line.
Threads are opened (and the channel's post budget refilled) before the first question.
"""
from __future__ import annotations

import asyncio
import json
import tempfile
from pathlib import Path

from bot.threads import THREAD_KEY

from .harness import BOARD, OWNER, Figure, agent, ms, pct, progress, stack, wait_until

NAME = "intervention"


def question_ts(emu, thread_ts: str, round_: int) -> float | None:
    """Server-side time of the owner-mention question of this round in a thread, if posted."""
    ch = emu.ws.channels[BOARD]
    for ts in ch.replies.get(thread_ts, []):
        msg = ch.msgs.get(ts, {})
        if f"Question {round_}?" in json.dumps(msg) and f"<@{OWNER}>" in json.dumps(msg):
            return float(ts)
    return None


def rows_of(log: Path, round_: int) -> list[dict]:
    """The agents' own records of this round (written once they read the answer)."""
    return [x for x in map(json.loads, log.read_text().splitlines()) if x["round"] == round_] if log.exists() else []


async def measure(k: int, rounds: int) -> tuple[list[float], list[float]]:
    with tempfile.TemporaryDirectory(prefix="taskpin-bench-iv-") as tmp:
        go, log = Path(tmp) / "go", Path(tmp) / "asks.jsonl"
        go.mkdir()
        agents = {"asker": agent("asker", BENCH_ROUNDS=rounds, BENCH_GO_DIR=go, BENCH_LOG=log)}
        async with stack(agents, tasks=k) as st:
            core, emu = st.core, st.emu
            ids = [t.id for t in await core.list_tasks()]
            for task_id in ids:
                await core.dispatch(task_id, actor=OWNER)
            threads = {}
            while len(threads) < k:
                for task_id in ids:
                    stored = await core.kv_get(THREAD_KEY + str(task_id))
                    if stored:
                        threads[task_id] = stored["ts"]
                await asyncio.sleep(0.05)
            await wait_until(lambda: st.runtime.poster.pending == 0, timeout=120)
            await asyncio.sleep(min(3, k))               # the channel's burst of posts is back
            progress(f"{k} agent(s): threads open; {rounds} round(s)")
            asked, replied = [], []
            for r in range(rounds):
                (go / f"go.{r}").touch()
                posted = await wait_until(lambda: all(question_ts(emu, ts, r) for ts in threads.values())
                                          and {i: question_ts(emu, ts, r) for i, ts in threads.items()}, timeout=k + 30)
                replies = await asyncio.gather(*(emu.user_message(OWNER, BOARD, "yes", thread_ts=ts)
                                                 for ts in threads.values()))
                reply_ts = {i: float(a.message["ts"]) for i, a in zip(threads, replies)}
                await wait_until(lambda: len(rows_of(log, r)) >= k, timeout=30)
                rows = rows_of(log, r)
                for row in rows:
                    task_id = int(row["task"])
                    asked.append(posted[task_id] - row["emit"])
                    replied.append(row["read"] - reply_ts[task_id])
                await asyncio.sleep(max(1.0, min(k, 3)))   # the post budget refills between rounds
            return asked, replied


async def run(quick: bool) -> list[Figure]:
    plan = [(2, 1)] if quick else [(1, 15), (10, 2), (50, 1)]
    figures = []
    for k, rounds in plan:
        asked, replied = await measure(k, rounds)
        pace = ("" if k <= 3 else f"bounded by chat.postMessage's pace in one channel (~1/s, burst 3): the "
                f"{k} questions go out one per second, so the last waits ~{k - 3}s; p50 ~{max(0, k // 2 - 3)}s")
        figures += [
            Figure(f"{k} agent(s): ask -> thread p50", ms(pct(asked, 50)), "ms", samples=len(asked)),
            Figure(f"{k} agent(s): ask -> thread p99", ms(pct(asked, 99)), "ms", "<= 300", samples=len(asked), notes=pace),
            Figure(f"{k} agent(s): reply -> agent p50", ms(pct(replied, 50)), "ms", samples=len(replied)),
            Figure(f"{k} agent(s): reply -> agent p99", ms(pct(replied, 99)), "ms", "<= 200", samples=len(replied)),
        ]
    return figures
