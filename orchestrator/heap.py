"""The cyclic garbage collector in a long-running event loop.

A full collection walks every object the collector tracks, and a started taskpin holds some
200,000 of them (modules, SQLAlchemy's and slack_sdk's machinery, settings). On 2 cores each
full collection stopped the event loop for 75-90 ms, a few times a minute under load, and one
that fell in a burst of fifty questions added its pause to every notification and answer of the
burst. What is alive once start-up is done lives as long as the process: frozen, it is left out
of later collections, which then walk only what came after.
"""
from __future__ import annotations

import gc


def settle() -> None:
    """Once start-up is done: collect what it left behind, and keep the rest out of later
    collections. A second start in one process (tests, benchmarks) first thaws what the first
    froze, so that garbage is freed rather than kept for good."""
    gc.unfreeze()
    gc.collect()
    gc.freeze()
