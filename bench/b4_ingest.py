"""4. Event ingest: 50 agents writing output and usage lines, ramped until the core stops keeping up.

50 `emitter` agents start together (a go-file holds the start time) and follow one schedule of
per-agent rates (lines/s): 50, 100, 200 (the headline step, longer), then doubling up to 6400.
One line in 10 is a usage line (written to the store with the others every half second); the
others are output lines carrying their write time. taskpin runs in this process.
- events/s: output lines delivered by the core's bus to a counting subscriber, plus usage lines
  per second taken between the first and the last usage flush in a step's window (counting
  the flushes that land in a window would be off by up to half a second of usage either way);
- lag: an output line's write time in the agent until that delivery;
- CPU: time.process_time() of this process (taskpin, and the in-process Slack emulator, which
  is nearly idle here; the agents are other processes), per 10k events.
Every 100 ms the bench samples the bus subscriptions' pending/dropped counts and the runners'
event inboxes.
"""
from __future__ import annotations

import asyncio
import os
import tempfile
import time
from collections import Counter
from pathlib import Path

from orchestrator import AgentOutput, UsageReported

from .harness import (
    OWNER,
    Figure,
    agent,
    live_sessions,
    ms,
    not_started,
    pct,
    progress,
    stack,
    wait_until,
)
from .stores import StoreMeter, store_name

NAME = "ingest"
FULL = [(50, 3), (100, 3), (200, 8), (400, 4), (800, 4), (1600, 4), (3200, 4), (6400, 4)]
QUICK = [(100, 1), (200, 1.5)]
HEADLINE = 200
USAGE_EVERY = 10
USAGE_INPUT_TOKENS = 10    # what each of the emitter's usage lines reports
FLUSH_GAP_S = 0.1          # UsageReported events closer than this came from one flush


async def run(quick: bool) -> list[Figure]:
    n_agents, schedule = (4, QUICK) if quick else (50, FULL)
    with tempfile.TemporaryDirectory(prefix="taskpin-bench-ingest-") as tmp:
        go = Path(tmp) / "go"
        env = dict(BENCH_SCHEDULE=",".join(f"{r}:{s}" for r, s in schedule), BENCH_USAGE_EVERY=USAGE_EVERY,
                   BENCH_GO_FILE=go, BENCH_HANG=1)
        async with stack({"emitter": agent("emitter", **env)}, tasks=n_agents) as st:
            core = st.core
            received: list[float] = []                 # delivery times, one per agent line
            lags: list[tuple[float, float]] = []       # (delivery time, lag), output lines
            tokens: dict[int, int] = {}                # task id -> input tokens reported so far
            usage: list[tuple[float, int]] = []        # (delivery time, usage lines it accounts)

            async def count(event) -> None:
                now = time.time()
                if isinstance(event, AgentOutput):     # one event may carry several lines
                    for line in event.text.splitlines():
                        received.append(now)
                        _step, written = line.split(" ", 1)
                        lags.append((now, now - float(written)))
                elif isinstance(event, UsageReported):  # totals: the usage lines accounted since the last one
                    before, tokens[event.task_id] = tokens.get(event.task_id, 0), event.input_tokens
                    lines = (event.input_tokens - before) // USAGE_INPUT_TOKENS
                    received.extend([now] * lines)
                    usage.append((now, lines))

            mine = core.bus.subscribe(count, name="bench-counter", max_queued=10**7)
            for task in await core.list_tasks():
                await core.dispatch(task.id, actor=OWNER)
            await wait_until(lambda: live_sessions(core) >= n_agents, timeout=45, soft=True)
            live, failed = live_sessions(core), await not_started(core)
            start = time.time() + 0.5
            (Path(tmp) / "go.tmp").write_text(repr(start))
            os.replace(Path(tmp) / "go.tmp", go)
            progress(f"{live} agents emitting; schedule {schedule}" + (f"; failed: {failed}" if failed else ""))

            bounds, t = [], start
            for _rate, seconds in schedule:
                bounds.append((t, t + seconds))
                t += seconds
            cpu_at: dict[float, float] = {}
            trips_at: dict[float, tuple] = {}
            meter = StoreMeter(core.store.engine)
            peaks = {"pending": 0, "inbox": 0}
            while time.time() < t + 1.0:
                now = time.time()
                for edge in [b for pair in bounds for b in pair]:
                    if edge <= now and edge not in cpu_at:
                        cpu_at[edge] = time.process_time()
                        trips_at[edge] = meter.snapshot()
                peaks["pending"] = max(peaks["pending"], *(s.pending for s in core.bus._subs if s is not mine))
                peaks["inbox"] = max([peaks["inbox"], *(r._inbox.qsize() for r in list(core._runners.values()))])
                await asyncio.sleep(0.1)
            dropped = {s.name: s.dropped for s in core.bus._subs}
            meter.close()

    steps = []
    for (rate, _s), (a, b) in zip(schedule, bounds):
        a_in = a + min(0.5, (b - a) / 3)                       # skip the ramp's edge
        outputs = sum(1 for x, _lag in lags if a_in <= x < b)
        step_lags = [lag for x, lag in lags if a_in <= x < b]
        cpu = cpu_at.get(b, 0) - cpu_at.get(a, 0)
        steps.append({"rate": rate, "offered": rate * n_agents,
                      "events_per_s": outputs / (b - a_in) + usage_rate(usage, a_in, b),
                      "lag_p50": pct(step_lags, 50), "lag_p99": pct(step_lags, 99),
                      "cpu_per_10k": cpu / max(1, sum(1 for x in received if a <= x < b)) * 10_000})
    head = next(s for s in steps if s["rate"] == HEADLINE)
    a, b = bounds[[r for r, _ in schedule].index(HEADLINE)]
    n_head = max(1, sum(1 for x in received if a <= x < b))
    (st0, c0, k0), (st1, c1, k1) = trips_at.get(a, (0, 0, Counter())), trips_at.get(b, (0, 0, Counter()))
    by_kind = ", ".join(f"{k}: {v / n_head * 1000:.2f}" for k, v in (k1 - k0).most_common(6))
    sustained = [s for s in steps if s["lag_p99"] is not None and s["lag_p99"] < 1.0 and s["events_per_s"] >= 0.9 * s["offered"]]
    best = max(sustained, key=lambda s: s["events_per_s"]) if sustained else None
    peak = max(steps, key=lambda s: s["events_per_s"])
    # Past capacity: the steps offering more than the highest sustained one. Collapse is a step
    # delivering less than a lighter step did; a curve still rising past capacity is not one.
    capacity = best["offered"] if best else peak["events_per_s"] / 0.9
    past = [(s, s["events_per_s"] / max(t["events_per_s"] for t in steps[:i + 1]))
            for i, s in enumerate(steps) if s["offered"] > capacity]
    ramp = "; ".join(f"{s['rate']}/s/agent: {s['events_per_s']:.0f} ev/s, lag p99 "
                     f"{ms(s['lag_p99'])} ms, {s['cpu_per_10k']:.2f} CPU s/10k" for s in steps)
    return [
        Figure(f"events processed per second ({n_agents} agents x {HEADLINE} lines/s)", round(head["events_per_s"]),
               "events/s", f">= {head['offered']}", samples=len(received),
               notes=f"{live} agents live; 1 line in {USAGE_EVERY} is usage; events = output lines delivered on the bus + usage lines accounted in UsageReported totals. ramp: {ramp}"
                     + (f"; agents that failed to start: {failed}" if failed else "")),
        Figure("lag, line written -> event delivered, p50", ms(head["lag_p50"]), "ms"),
        Figure("lag, line written -> event delivered, p99", ms(head["lag_p99"]), "ms"),
        Figure("CPU seconds per 10k events", round(head["cpu_per_10k"], 3), "CPU s",
               notes="this process: taskpin plus the in-process emulator; agents excluded"),
        Figure("highest sustained rate (lag p99 < 1 s, >= 90% of offered)",
               round(best["events_per_s"]) if best else None, "events/s",
               notes=f"at {best['rate'] if best else '-'} lines/s per agent; 2 cores shared with the agents"),
        Figure("store statements per 1,000 events", round((st1 - st0) / n_head * 1000, 2), "statements",
               notes=f"{store_name()}; at {HEADLINE} lines/s per agent; transactions (commits) per 1,000 events: "
                     f"{(c1 - c0) / n_head * 1000:.2f}; by kind: {by_kind or 'none'}"),
        Figure("peak events per second in the ramp", round(peak["events_per_s"]), "events/s",
               notes=f"at {peak['rate']} lines/s per agent"),
        Figure("past capacity: lowest step / best step up to it", round(min(r for _s, r in past), 2)
               if past else None, "ratio", ">= 0.9",
               notes="each step offered more than the highest sustained one, its delivered events/s over the best "
                     "of the lighter steps and itself: no collapse means the agents' pipes slow them (back-pressure) "
                     "and throughput holds; the lowest such step over the ramp's peak: "
                     + (f"{min(s['events_per_s'] for s, _r in past) / peak['events_per_s']:.2f}" if past else "-")),
        Figure(f"delivered / offered at {HEADLINE} lines/s per agent", round(head["events_per_s"] / head["offered"], 3),
               "ratio", ">= 0.99", notes="events/s cannot exceed what the agents offer"),
        Figure("max pending events in a bus subscription", peaks["pending"], "events", "<= 10000",
               notes=f"subscriptions drop output/usage beyond their bound; dropped: {dropped}"),
        Figure("max events queued in a runner's inbox", peaks["inbox"], "events",
               notes="TaskRunner._inbox: beyond 2000 queued events the pump stops reading the agent (backpressure)"),
    ]


def usage_rate(usage: list[tuple[float, int]], start: float, end: float) -> float:
    """Usage lines per second accounted in [start, end). Usage is written every half second, so
    counting the lines of the flushes that land in a window is off by up to a flush either way:
    the rate is taken between the first and the last flush in it instead (a flush's lines
    accrued since the one before)."""
    flushes: list[list[float]] = []                       # [time, lines]: the events of one flush
    for at, lines in usage:
        if start <= at < end:
            if flushes and at - flushes[-1][0] < FLUSH_GAP_S:
                flushes[-1][1] += lines
            else:
                flushes.append([at, lines])
    if len(flushes) < 2:
        return sum(lines for _at, lines in flushes) / (end - start)
    return sum(lines for _at, lines in flushes[1:]) / (flushes[-1][0] - flushes[0][0])
