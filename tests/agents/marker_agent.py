#!/usr/bin/env python3
"""A plain-text legacy agent: no JSON at all, asks with the [INTERVENTION_REQUIRED] marker.

Run with prompt_via = "stdin-text" (reads the prompt as one plain line) or "arg" (pass
--prompt-arg; the prompt is the last argument). It prints a little progress, asks
MARKER_AGENT_QUESTION (default "Which database should I use?") with the marker, reads one
plain answer line, writes it to marker_answer.txt in the working directory, prints
"Using: <answer>" and exits with MARKER_AGENT_EXIT (default 0).
"""
from __future__ import annotations

import os
import sys


def main() -> int:
    if "--prompt-arg" in sys.argv[1:]:
        prompt = sys.argv[-1]
    else:
        prompt = sys.stdin.readline().rstrip("\n")
    print(f"Working on: {prompt}", flush=True)
    print("Looking at the repository...", flush=True)
    question = os.environ.get("MARKER_AGENT_QUESTION", "Which database should I use?")
    print(f"[INTERVENTION_REQUIRED] {question}", flush=True)
    answer = sys.stdin.readline()
    if not answer:
        print("no answer: stdin closed", file=sys.stderr, flush=True)
        return 3
    answer = answer.rstrip("\n")
    with open("marker_answer.txt", "w", encoding="utf-8") as fh:
        fh.write(answer)
    print(f"Using: {answer}", flush=True)
    return int(os.environ.get("MARKER_AGENT_EXIT", "0"))


if __name__ == "__main__":
    sys.exit(main())
