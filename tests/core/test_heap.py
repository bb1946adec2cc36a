"""After start-up the process's objects are kept out of the garbage collector's full
collections; a second start in one process still frees what the first one left."""
from __future__ import annotations

import gc
import weakref

from orchestrator import heap


class _Node:
    def __init__(self):
        self.me = self          # a reference cycle: only the cyclic collector frees it


def test_what_start_up_left_alive_is_frozen_and_freed_after_a_second_start_once_it_is_garbage():
    try:
        alive = _Node()
        seen = weakref.ref(alive)
        heap.settle()
        assert gc.get_freeze_count() > 0
        del alive
        gc.collect()
        assert seen() is not None          # frozen: full collections leave it alone
        heap.settle()                      # the next start thaws, collects, freezes again
        assert seen() is None
    finally:
        gc.unfreeze()
