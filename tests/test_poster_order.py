"""The outbox poster's choice of the next message: per thread in order, the most urgent thread
first, and a message whose budget lets it go now before one that must wait for its own."""
from __future__ import annotations

from collections import deque
from datetime import UTC, datetime

from bot.poster import Priority, _Channel
from orchestrator.outbox import OutboxItem, OutboxStatus


def item(item_id: int, thread: str, op: str) -> OutboxItem:
    return OutboxItem(id=item_id, channel="C1", thread=thread, key=None, kind="intervention", op=op,
                      priority=Priority.INTERVENTION, parent=None, payload={}, status=OutboxStatus.PENDING,
                      maybe_sent=False, attempts=0, ref=None, error=None, created_at=datetime.now(UTC))


def test_a_question_to_post_does_not_wait_behind_an_edit_waiting_for_chat_update_budget():
    channel = _Channel(rate=1.0, burst=3)
    edit, question = item(1, "task:1", "update"), item(2, "task:2", "post")
    channel.threads = {"task:1": deque([edit]), "task:2": deque([question])}
    assert channel.next_item() is edit                                         # oldest first...
    assert channel.next_item(ready=lambda i: i.op == "post") is question      # ...unless it must wait
    assert channel.next_item(ready=lambda i: False) is edit                   # nothing ready: the oldest


def test_in_one_thread_a_post_passes_edits_waiting_for_budget_but_never_an_earlier_post():
    channel = _Channel(rate=1.0, burst=3)
    closing_edit, next_question, after = item(1, "task:1", "update"), item(2, "task:1", "post"), item(3, "task:1", "post")
    channel.threads = {"task:1": deque([closing_edit, next_question, after])}
    assert channel.next_item(ready=lambda i: True) is closing_edit             # all ready: written order
    assert channel.next_item(ready=lambda i: i.op == "post") is next_question  # the edit waits, the question goes
    channel.pop(next_question)
    assert list(channel.threads["task:1"]) == [closing_edit, after]
    assert channel.next_item(ready=lambda i: i.op == "post") is after          # the posts keep their order
    assert channel.next_item(ready=lambda i: False) is closing_edit            # nothing ready: the oldest
    channel.threads = {"task:1": deque([item(4, "task:1", "update"), item(5, "task:1", "update")])}
    assert channel.next_item(ready=lambda i: i.id == 5).id == 4               # edits never pass each other
