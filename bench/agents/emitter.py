#!/usr/bin/env python3
"""Benchmark agent: writes output and usage lines at scheduled rates (command protocol).

env BENCH_SCHEDULE     "rate:seconds,rate:seconds,..." lines per second per step (default "200:10")
env BENCH_START_AT     epoch time to start the schedule (all agents in step); default now
env BENCH_USAGE_EVERY  every Nth line is a usage line (default 10); the others are output lines
                       whose text is "s<step> <epoch written>", for the lag measurement
env BENCH_GO_FILE      if set, wait for this file, which holds the epoch time to start at
env BENCH_HANG         if set, wait for stdin to close after the schedule instead of finishing
"""
import json
import os
import sys
import time

schedule = [tuple(float(x) for x in part.split(":")) for part in os.environ.get("BENCH_SCHEDULE", "200:10").split(",")]
usage_every = int(os.environ.get("BENCH_USAGE_EVERY", "10"))
sys.stdin.readline()   # the prompt line
go = os.environ.get("BENCH_GO_FILE")
while go and not os.path.exists(go):
    time.sleep(0.01)
start = float(open(go).read()) if go else float(os.environ.get("BENCH_START_AT") or time.time())
time.sleep(max(0.0, start - time.time()))
usage = json.dumps({"type": "usage", "input_tokens": 10, "output_tokens": 5, "cost_usd": 0.0001})
out = sys.stdout
sent = 0
step_start = start
for step, (rate, seconds) in enumerate(schedule):
    step_end = step_start + seconds
    due_before = sent
    while True:
        now = time.time()
        if now >= step_end:
            break
        due = due_before + int(rate * (now - step_start))
        batch = []
        stamp = f"{now:.6f}"
        while sent < due:
            sent += 1
            batch.append(usage if sent % usage_every == 0 else
                         f'{{"type":"output","text":"s{step} {stamp}"}}')
        if batch:
            out.write("\n".join(batch) + "\n")
            out.flush()
        time.sleep(0.01)
    step_start = step_end
if os.environ.get("BENCH_HANG"):
    while sys.stdin.readline():
        pass
else:
    out.write(json.dumps({"type": "finished", "summary": f"wrote {sent} lines"}) + "\n")
