"""The pinned board: every task, one column per state, always within Slack's limits.

The board is rendered in full if it fits. Otherwise it degrades one step at a time until
it does:

1. completed and failed tasks collapse into one line of counts;
2. the longest active column switches to compact lines (no buttons), then the next...;
3. compact columns show fewer lines, with "+N more" pointing to the Home tab.

Rendering is deterministic: the same tasks and the same minute give the same payload, so
the syncer can skip an update that would not change anything.
"""
from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, replace
from datetime import datetime
from types import MappingProxyType

from orchestrator.models import TaskView
from orchestrator.states import STATE_ORDER, TaskState, column_of

from .card import STATE_EMOJI, STATE_LABEL, render_card, render_card_compact
from .kit import Block, context, header, section
from .limits import FALLBACK_TEXT_MAX, MESSAGE_MAX_BLOCKS, MESSAGE_TOTAL_TEXT_MAX, SECTION_TEXT_MAX, total_text_chars
from .text import epoch_seconds, link, plain

BOARD_TITLE = "Agent tasks"
EMPTY_BOARD_TEXT = "No tasks yet. Create one with the *New agent task* shortcut or from the Home tab."
NO_URLS: Mapping[int, str] = MappingProxyType({})
COLLAPSIBLE_STATES = (TaskState.COMPLETED, TaskState.FAILED)
ACTIVE_STATES = tuple(s for s in STATE_ORDER if s not in COLLAPSIBLE_STATES)
# Among columns of equal length, the first here turns compact first. Reviews keep their
# buttons longest: approving is what the board is for; blocked tasks are answered in threads.
COMPACT_FIRST = (TaskState.BACKLOG, TaskState.IN_PROGRESS, TaskState.BLOCKED, TaskState.AWAITING_REVIEW)
# A compact column starts with at most this many lines: a long list helps nobody on a pinned
# message, the Home tab has them all.
COMPACT_START_LINES = 20
# Header, summary, a section per active column, finished counts, empty columns, footer.
MIN_BOARD_BLOCKS = 3 + len(ACTIVE_STATES) + 3


def order_tasks(tasks: Sequence[TaskView]) -> dict[TaskState, list[TaskView]]:
    """Tasks by state in STATE_ORDER, each column sorted by :func:`column_sort_key`."""
    columns: dict[TaskState, list[TaskView]] = {state: [] for state in STATE_ORDER}
    for task in tasks:   # an approval in progress stays in the review column
        columns[column_of(task.state)].append(task)
    for column in columns.values():
        column.sort(key=column_sort_key)
    return columns


def column_sort_key(task: TaskView) -> tuple:
    """Running tasks by latest state change first, then the queue in queue order; id breaks ties."""
    return (task.queued, task.queue_position or 0, -epoch_seconds(task.state_changed_at), -task.id)


def render_board(
    tasks: Sequence[TaskView],
    *,
    now: datetime,
    thread_urls: Mapping[int, str] = NO_URLS,
    home_hint: str | None = None,
    pull_request_urls: Mapping[int, str] = NO_URLS,
    max_blocks: int = MESSAGE_MAX_BLOCKS,
) -> dict:
    """``{"text", "blocks"}`` for chat.postMessage / chat.update.

    ``home_hint`` is an optional link to the app's Home tab (``slack://app?team=…&id=…&tab=home``).
    """
    if max_blocks < MIN_BOARD_BLOCKS:
        raise ValueError(f"a board needs at least {MIN_BOARD_BLOCKS} blocks")
    board = _Board(order_tasks(tasks), now, thread_urls, link(home_hint, "the Home tab"), pull_request_urls)
    plan = _Plan()
    while True:
        blocks = board.render(plan)
        if len(blocks) <= max_blocks and total_text_chars(blocks) <= MESSAGE_TOTAL_TEXT_MAX:
            return {"text": plain(board.fallback_text(), FALLBACK_TEXT_MAX), "blocks": blocks}
        plan = board.degrade(plan)


@dataclass(frozen=True)
class _Plan:
    collapse_finished: bool = False
    compact_caps: Mapping[TaskState, int] = field(default_factory=dict)  # state -> lines shown at most

    def with_cap(self, state: TaskState, cap: int) -> "_Plan":
        return replace(self, compact_caps={**self.compact_caps, state: cap})


class _Board:
    """One render_board call: the ordered columns plus caches of rendered cards."""

    def __init__(self, columns: dict[TaskState, list[TaskView]], now: datetime, thread_urls: Mapping[int, str], home: str,
                 pull_request_urls: Mapping[int, str] = NO_URLS):
        self.columns = columns
        self.now = now
        self.thread_urls = thread_urls
        self.pull_request_urls = pull_request_urls
        self.home = home
        self._cards: dict[int, list[Block]] = {}
        self._lines: dict[int, str] = {}

    @property
    def total(self) -> int:
        return sum(len(column) for column in self.columns.values())

    def degrade(self, plan: _Plan) -> _Plan:
        if not plan.collapse_finished and any(self.columns[s] for s in COLLAPSIBLE_STATES):
            return replace(plan, collapse_finished=True)
        full = [s for s in COMPACT_FIRST if self.columns[s] and s not in plan.compact_caps]
        if full:
            longest = max(full, key=lambda s: (len(self.columns[s]), -COMPACT_FIRST.index(s)))
            return plan.with_cap(longest, min(len(self.columns[longest]), COMPACT_START_LINES))
        shown = {s: min(cap, len(self.columns[s])) for s, cap in plan.compact_caps.items()}
        shrinkable = [s for s in COMPACT_FIRST if shown.get(s, 0) > 0]
        if not shrinkable:
            raise AssertionError("board cannot shrink further")  # unreachable above MIN_BOARD_BLOCKS
        widest = max(shrinkable, key=lambda s: (shown[s], -COMPACT_FIRST.index(s)))
        return plan.with_cap(widest, shown[widest] - max(1, shown[widest] // 4))

    def render(self, plan: _Plan) -> list[Block]:
        blocks = [header(BOARD_TITLE, block_id="board_header"), context(self._summary(), block_id="board_summary")]
        if not self.total:
            return [*blocks, section(EMPTY_BOARD_TEXT, block_id="board_empty")]
        empty: list[str] = []
        for state in STATE_ORDER:
            tasks = self.columns[state]
            if plan.collapse_finished and state in COLLAPSIBLE_STATES:
                continue
            if not tasks:
                empty.append(STATE_LABEL[state])
            elif state in plan.compact_caps:
                blocks += self._compact_column(state, plan.compact_caps[state])
            else:
                blocks += self._full_column(state)
        if plan.collapse_finished:
            blocks.append(section(self._finished_counts(), block_id="board_finished"))
        if empty:
            blocks.append(context("Empty: " + " · ".join(empty), block_id="board_empty_columns"))
        if plan.collapse_finished or plan.compact_caps:
            blocks.append(context(self._footer(plan), block_id="board_footer"))
        return blocks

    def fallback_text(self) -> str:
        return f"{BOARD_TITLE}: {self._counts_text()}" if self.total else f"{BOARD_TITLE}: none yet"

    def _summary(self) -> str:
        return f"*{self.total}* tasks: {self._counts_text()}" if self.total else "No tasks"

    def _counts_text(self) -> str:
        counts = [f"{len(self.columns[s])} {STATE_LABEL[s].lower()}" for s in STATE_ORDER if self.columns[s]]
        return " · ".join(counts)

    def _column_title(self, state: TaskState) -> str:
        return f"{STATE_EMOJI[state]} *{STATE_LABEL[state]}* ({len(self.columns[state])})"

    def _full_column(self, state: TaskState) -> list[Block]:
        blocks = [section(self._column_title(state), block_id=f"column:{state.value}")]
        for task in self.columns[state]:
            blocks += self._card(task)
        return blocks

    def _compact_column(self, state: TaskState, cap: int) -> list[Block]:
        tasks = self.columns[state]
        lines = [self._column_title(state), *(self._line(task) for task in tasks[:cap])]
        hidden = len(tasks) - min(cap, len(tasks))
        if hidden:
            lines.append(f"+{hidden} more — open {self.home} for all")
        return [
            section(text, block_id=f"compact:{state.value}:{index}")
            for index, text in enumerate(pack_lines(lines, SECTION_TEXT_MAX))
        ]

    def _finished_counts(self) -> str:
        parts = [
            f"{STATE_EMOJI[s]} {len(self.columns[s])} {STATE_LABEL[s].lower()}"
            for s in COLLAPSIBLE_STATES
            if self.columns[s]
        ]
        return f"{' · '.join(parts)} — see {self.home}"

    def _footer(self, plan: _Plan) -> str:
        as_cards = sum(
            len(self.columns[s])
            for s in STATE_ORDER
            if s not in plan.compact_caps and not (plan.collapse_finished and s in COLLAPSIBLE_STATES)
        )
        return (
            f"{as_cards} of {self.total} tasks shown as cards; compact lines have no buttons"
            f" — open {self.home} for all"
        )

    def _card(self, task: TaskView) -> list[Block]:
        if task.id not in self._cards:
            self._cards[task.id] = render_card(task, now=self.now, thread_url=self.thread_urls.get(task.id),
                                               pull_request_url=self.pull_request_urls.get(task.id))
        return self._cards[task.id]

    def _line(self, task: TaskView) -> str:
        if task.id not in self._lines:
            self._lines[task.id] = render_card_compact(task, thread_url=self.thread_urls.get(task.id),
                                                       pull_request_url=self.pull_request_urls.get(task.id))
        return self._lines[task.id]


def pack_lines(lines: Sequence[str], limit: int) -> list[str]:
    """Join lines with newlines into as few chunks of at most ``limit`` characters as possible.

    Every line must already be at most ``limit`` long.
    """
    chunks: list[str] = []
    current = ""
    for line in lines:
        if current and len(current) + 1 + len(line) > limit:
            chunks.append(current)
            current = line
        else:
            current = f"{current}\n{line}" if current else line
    if current:
        chunks.append(current)
    return chunks
