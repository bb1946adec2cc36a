#!/usr/bin/env python3
"""Benchmark agent: records when it started, then stays alive until stdin closes.

env BENCH_START_FILE  if set, "<task id> <epoch>" is appended to it first thing
"""
import time

t = time.time()
import os  # noqa: E402
import sys  # noqa: E402

if os.environ.get("BENCH_START_FILE"):
    with open(os.environ["BENCH_START_FILE"], "a") as fh:
        fh.write(f"{os.environ.get('TASKPIN_TASK_ID')} {t}\n")
sys.stdout.write('{"type":"output","text":"started"}\n')
sys.stdout.flush()
while sys.stdin.readline():
    pass
