#!/usr/bin/env python3
"""Benchmark agent: asks questions (command protocol), one after another.

env BENCH_ROUNDS   questions to ask, 0 = forever (default)
env BENCH_GO_DIR   if set, question r is asked only once the file <dir>/go.<r> exists
env BENCH_THINK_S  seconds to wait after each answer before the next question (default 0)
env BENCH_LOG      if set, one JSON line per question: task, round, emit and read epoch times
                   (emit: just before the intervention line is written; read: the answer line read)
"""
import json
import os
import sys
import time

rounds = int(os.environ.get("BENCH_ROUNDS", "0"))
think = float(os.environ.get("BENCH_THINK_S", "0"))
go_dir = os.environ.get("BENCH_GO_DIR")
log = open(os.environ["BENCH_LOG"], "a") if os.environ.get("BENCH_LOG") else None
task = os.environ.get("TASKPIN_TASK_ID")
sys.stdin.readline()   # the prompt line
r = 0
while not rounds or r < rounds:
    if go_dir:
        flag = os.path.join(go_dir, f"go.{r}")
        while not os.path.exists(flag):
            time.sleep(0.002)
    emitted = time.time()
    sys.stdout.write(json.dumps({"type": "intervention", "id": f"q{r}", "kind": "question", "prompt": f"Question {r}?",
                                 "options": [{"id": "yes", "label": "Yes"}, {"id": "no", "label": "No"}]}) + "\n")
    sys.stdout.flush()
    line = sys.stdin.readline()
    read = time.time()
    if not line:
        sys.exit(3)
    if log:
        log.write(json.dumps({"task": task, "round": r, "emit": emitted, "read": read}) + "\n")
        log.flush()
    r += 1
    time.sleep(think)
sys.stdout.write(json.dumps({"type": "finished", "summary": f"asked {r} questions"}) + "\n")
