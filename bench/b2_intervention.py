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
import math
import re
import tempfile
import time
from pathlib import Path

from bot.threads import THREAD_KEY
from orchestrator import InterventionRequested

from .harness import BOARD, OWNER, Figure, agent, full_collections, ms, pct, progress, stack, wait_until

NAME = "intervention"


def question_ts(emu, thread_ts: str, round_: int, owner: str = OWNER) -> float | None:
    """Server-side time of the owner-mention question of this round in a thread, if posted."""
    ch = emu.ws.channels[BOARD]
    for ts in ch.replies.get(thread_ts, []):
        msg = ch.msgs.get(ts, {})
        if f"Question {round_}?" in json.dumps(msg) and f"<@{owner}>" in json.dumps(msg):
            return float(ts)
    return None


def notified_at(emu, owner: str, task_id: int, since: float) -> float | None:
    """When the owner's DM first showed this task's question: the server time of the first
    version of the DM (its post, or an edit) naming the task, written after `since` (the round's
    start: an earlier round's DM names the task too)."""
    channel = emu.ws.im_with(owner).id
    mark = re.compile(rf"\*#{task_id}\*")
    times = []
    for msg in emu.messages(channel):
        for version in [*emu.edits(channel, msg["ts"]), msg]:
            if mark.search(json.dumps(version)):
                at = float((version.get("edited") or {}).get("ts") or version["ts"])
                if at >= since:
                    times.append(at)
    return min(times) if times else None


def rows_of(log: Path, round_: int) -> list[dict]:
    """The agents' own records of this round (written once they read the answer)."""
    return [x for x in map(json.loads, log.read_text().splitlines()) if x["round"] == round_] if log.exists() else []


async def measure(k: int, rounds: int, one_owner: bool = False
                  ) -> tuple[list[float], list[float], list[float], int, int, list[float], list[float]]:
    """(ask -> thread, reply -> agent, ask -> DM, DM 429s, DM messages, ask -> the core's event,
    full-collection pauses), times in seconds."""
    with tempfile.TemporaryDirectory(prefix="taskpin-bench-iv-") as tmp:
        go, log = Path(tmp) / "go", Path(tmp) / "asks.jsonl"
        go.mkdir()
        agents = {"asker": agent("asker", BENCH_ROUNDS=rounds, BENCH_GO_DIR=go, BENCH_LOG=log)}
        async with stack(agents) as st:
            core, emu = st.core, st.emu
            owners = [OWNER if one_owner or k == 1 else f"U_OWNER{i}" for i in range(k)]
            for owner in set(owners) - {OWNER}:
                emu.add_user(owner, owner.lower())
            ids = [(await core.create_task(prompt=f"bench task {i}", owner=o)).id for i, o in enumerate(owners)]
            owner_of = dict(zip(ids, owners))
            raised: dict[tuple[int, int], float] = {}     # (task, round) -> the core's event on the bus

            async def on_question(event) -> None:
                if isinstance(event, InterventionRequested):
                    raised[(event.task.id, int(event.intervention.prompt.split()[1].rstrip("?")))] = time.time()

            core.bus.subscribe(on_question, name="bench-questions", max_queued=10**6)
            for task_id in ids:
                await core.dispatch(task_id, actor=owner_of[task_id])
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
            asked, replied, notified, in_core = [], [], [], []
            with full_collections() as pauses:   # the rounds only, not the set-up
                for r in range(rounds):
                    started = time.time()
                    (go / f"go.{r}").touch()
                    posted = await wait_until(lambda: all(question_ts(emu, ts, r, owner_of[i]) for i, ts in threads.items())
                                              and {i: question_ts(emu, ts, r, owner_of[i]) for i, ts in threads.items()}, timeout=k + 30)
                    dms = await wait_until(lambda: all(notified_at(emu, owner_of[i], i, started) for i in threads)
                                           and {i: notified_at(emu, owner_of[i], i, started) for i in threads}, timeout=k + 30)
                    replies = await asyncio.gather(*(emu.user_message(owner_of[i], BOARD, "yes", thread_ts=ts)
                                                     for i, ts in threads.items()))
                    reply_ts = {i: float(a.message["ts"]) for i, a in zip(threads, replies)}
                    await wait_until(lambda: len(rows_of(log, r)) >= k, timeout=30)
                    rows = rows_of(log, r)
                    for row in rows:
                        task_id = int(row["task"])
                        asked.append(posted[task_id] - row["emit"])
                        notified.append(dms[task_id] - row["emit"])
                        if (task_id, r) in raised:
                            in_core.append(raised[(task_id, r)] - row["emit"])
                        replied.append(row["read"] - reply_ts[task_id])
                    await asyncio.sleep(max(1.0, min(k, 3)))   # the post budget refills between rounds
            dm_channels = {emu.ws.im_with(o).id for o in set(owners)}
            dm_429s = sum(1 for c in emu.calls if c.http_status == 429 and c.params.get("channel") in dm_channels)
            dm_count = sum(len(emu.messages(c)) for c in dm_channels)
            return asked, replied, notified, dm_429s, dm_count, in_core, pauses


BURST = 3   # chat.postMessage: ~1 per second per channel after a burst of 3


def thread_bound_ms(k: int, q: float) -> float:
    """The physical bound for the q-th percentile of k simultaneous questions in one channel:
    the n-th message cannot land before (n - burst) s."""
    n = max(1, math.ceil(q / 100 * k))
    return max(0, n - BURST) * 1000.0


async def run(quick: bool) -> list[Figure]:
    plan = [(2, 1, False), (2, 1, True)] if quick else [(1, 15, False), (10, 2, False), (50, 1, False), (50, 1, True)]
    figures = []
    for k, rounds, one_owner in plan:
        asked, replied, notified, dm_429s, dm_count, in_core, pauses = await measure(k, rounds, one_owner)
        who = "1 owner" if one_owner or k == 1 else f"{k} owners"
        label = f"{k} agent(s), {who}"
        pace = ("" if k <= BURST else f"bounded by chat.postMessage's pace in one channel (~1/s, burst {BURST}): the "
                f"n-th question cannot land before (n - {BURST}) s; baseline = that bound")
        bound = dict(baseline_name=f"physical bound (n - {BURST}) s")
        figures += [
            Figure(f"{label}: ask -> thread p50", ms(pct(asked, 50)), "ms", samples=len(asked),
                   baseline=thread_bound_ms(k, 50), **bound),
            Figure(f"{label}: ask -> thread p99", ms(pct(asked, 99)), "ms", "<= 300", samples=len(asked), notes=pace,
                   baseline=thread_bound_ms(k, 99), **bound),
            Figure(f"{label}: ask -> owner notified (DM) p99", ms(pct(notified, 99)), "ms", "<= 300",
                   samples=len(notified),
                   notes=f"the owner's DM (its post or an edit) first naming the question; {dm_count} DM message(s) "
                         f"for {len(notified)} questions; DM 429s: {dm_429s}"),
            Figure(f"{label}: ask -> the core's InterventionRequested p99", ms(pct(in_core, 99)), "ms",
                   samples=len(in_core), notes="the core's part of ask -> notified: the question stored, the task "
                                               "blocked, the event on the bus"),
            Figure(f"{label}: reply -> agent p50", ms(pct(replied, 50)), "ms", samples=len(replied)),
            Figure(f"{label}: reply -> agent p99", ms(pct(replied, 99)), "ms", "<= 200", samples=len(replied),
                   notes=f"the garbage collector's full collections during the rounds: {len(pauses)}, the longest "
                         f"{ms(max(pauses, default=0))} ms (taskpin, the emulator and the bench share one event loop)"),
        ]
    return figures
