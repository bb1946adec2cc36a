"""Crash points for the fault suite: `TASKPIN_CRASH_AT=name` makes the process SIGKILL itself
when it reaches the point of that name, so tests can kill -9 taskpin at an exact moment.

Unset in production; checking it costs a dictionary lookup.
"""
from __future__ import annotations

import os
import signal

ENV = "TASKPIN_CRASH_AT"


def crash_point(name: str) -> None:
    if os.environ.get(ENV) == name:
        os.kill(os.getpid(), signal.SIGKILL)
