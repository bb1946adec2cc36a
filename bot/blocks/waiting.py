"""What waits for an owner: the direct message that tells them, and the Home tab's list."""
from __future__ import annotations

from collections.abc import Mapping, Sequence

from orchestrator.models import InterventionView, TaskView

from .intervention import answer_controls
from .kit import Block, context, section
from .text import one_line, safe_text, user_mention

Waiting = tuple[TaskView, InterventionView]
DM_LISTED = 10          # questions shown in the DM with their text; the next MORE_NAMED by task id
MORE_NAMED = 200
HOME_LISTED = 5         # 2-3 blocks each: the Home tab's 100-block limit also holds 25 cards
QUESTION_MAX = 300


def _link(task: TaskView, thread_urls: Mapping[int, str]) -> str:
    url = thread_urls.get(task.id)
    return f"<{url}|open the thread>" if url else "its thread is on its way"


def _line(task: TaskView, iv: InterventionView, thread_urls: Mapping[int, str]) -> str:
    title = safe_text(one_line(task.title), 80)
    return f"• *{task.short_id}* {title}: {safe_text(one_line(iv.prompt), 120)} ({_link(task, thread_urls)})"


def render_waiting_dm(owner: str, waiting: Sequence[Waiting], thread_urls: Mapping[int, str]) -> dict:
    """The owner's DM: how many questions wait, which, and where to answer; or that none do."""
    if not waiting:
        text = "✅ Nothing waits for your answer any more."
        return {"text": text, "blocks": [section(text, block_id="waiting_none")]}
    n = len(waiting)
    head = (f"🙋 {user_mention(owner)} an agent waits for your answer" if n == 1
            else f"🙋 {user_mention(owner)} *{n} agent questions* wait for your answer")
    lines = [_line(t, iv, thread_urls) for t, iv in waiting[:DM_LISTED]]
    if n > DM_LISTED:
        more = waiting[DM_LISTED:DM_LISTED + MORE_NAMED]
        tail = " …" if n > DM_LISTED + MORE_NAMED else ""
        lines.append(f"… and {n - DM_LISTED} more: " + ", ".join(f"*{t.short_id}*" for t, _ in more) + tail)
    blocks: list[Block] = [section(head, block_id="waiting_head"), section("\n".join(lines), block_id="waiting_list"),
                           context("Answer in the task's thread, or with the buttons on taskpin's Home tab.",
                                   block_id="waiting_hint")]
    return {"text": f"{n} agent question{'s' if n != 1 else ''} wait for your answer", "blocks": blocks}


def home_waiting_blocks(waiting: Sequence[Waiting], thread_urls: Mapping[int, str]) -> list[Block]:
    """"Waiting for you" on the Home tab: each question with its answer buttons."""
    if not waiting:
        return []
    blocks: list[Block] = [section(f"*Waiting for you* ({len(waiting)})", block_id="home_waiting")]
    for task, iv in waiting[:HOME_LISTED]:
        question = safe_text(iv.prompt, QUESTION_MAX)
        blocks.append(section(f"*{task.short_id}* {safe_text(one_line(task.title), 80)}\n{question}",
                              block_id=f"home_waiting:{iv.id}"))
        controls = [] if iv.multi_select else answer_controls(iv)
        if controls:
            blocks += controls
        else:
            blocks.append(context(f"Answer in the thread: {_link(task, thread_urls)}", block_id=f"home_reply:{iv.id}"))
    if len(waiting) > HOME_LISTED:
        blocks.append(context(f"… and {len(waiting) - HOME_LISTED} more: answer these first, or in their threads.",
                              block_id="home_waiting_more"))
    return blocks

