"""One task as a card: a section, a context line of facts, and the buttons its state allows."""
from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime

from orchestrator.models import DiffSummary, TaskView
from orchestrator.states import TaskState

from ..ids import ActionId, make_action_id
from .kit import Block, actions, button, confirm_dialog, context, section
from .text import (
    escape_mrkdwn,
    fmt_cost,
    fmt_elapsed,
    inline_code,
    link,
    one_line,
    safe_text,
    truncate,
    user_mention,
)

CARD_TITLE_MAX = 150
COMPACT_TITLE_MAX = 60
COMPACT_LINE_MAX = 240
FAILURE_REASON_MAX = 300
COMPACT_REASON_MAX = 60
DIFF_FILES_SHOWN = 3
CARD_TEXT_MAX = 2000  # well under the 3000 section limit, keeps boards small

STATE_EMOJI: Mapping[TaskState, str] = {
    TaskState.BACKLOG: "📥",
    TaskState.WAITING: "⏸️",
    TaskState.QUEUED: "🕒",
    TaskState.IN_PROGRESS: "▶️",
    TaskState.BLOCKED: "✋",
    TaskState.AWAITING_REVIEW: "🔍",
    TaskState.APPROVING: "⏳",
    TaskState.COMPLETED: "✅",
    TaskState.FAILED: "❌",
}
STATE_LABEL: Mapping[TaskState, str] = {
    TaskState.BACKLOG: "Backlog",
    TaskState.WAITING: "Waiting",
    TaskState.QUEUED: "Queued",
    TaskState.IN_PROGRESS: "In progress",
    TaskState.BLOCKED: "Blocked",
    TaskState.AWAITING_REVIEW: "Awaiting review",
    TaskState.APPROVING: "Approving…",
    TaskState.COMPLETED: "Completed",
    TaskState.FAILED: "Failed",
}

# The buttons each state offers, in display order. Handlers still check the transition.
CARD_ACTIONS: Mapping[TaskState, tuple[ActionId, ...]] = {
    TaskState.BACKLOG: (ActionId.DISPATCH,),
    TaskState.WAITING: (ActionId.DISPATCH_ANYWAY, ActionId.CANCEL),
    TaskState.QUEUED: (ActionId.CANCEL,),
    TaskState.IN_PROGRESS: (ActionId.CANCEL,),
    TaskState.BLOCKED: (ActionId.CANCEL,),
    TaskState.AWAITING_REVIEW: (ActionId.APPROVE, ActionId.REQUEST_CHANGES, ActionId.REJECT),
    TaskState.APPROVING: (),   # decided: nobody can click a second decision
    TaskState.COMPLETED: (),
    TaskState.FAILED: (ActionId.RETRY,),
}
_BUTTON_TEXT: Mapping[ActionId, str] = {
    ActionId.DISPATCH: "Dispatch",
    ActionId.DISPATCH_ANYWAY: "Dispatch anyway",
    ActionId.CANCEL: "Cancel",
    ActionId.APPROVE: "Approve",
    ActionId.REQUEST_CHANGES: "Request changes",
    ActionId.REJECT: "Reject",
    ActionId.RETRY: "Retry",
}
_BUTTON_STYLE: Mapping[ActionId, str] = {
    ActionId.DISPATCH: "primary",
    ActionId.APPROVE: "primary",
    ActionId.REJECT: "danger",
    ActionId.CANCEL: "danger",
}


# States in which a queue position is shown (queued; the others for views built by hand).
_WAITING = (TaskState.QUEUED, TaskState.BACKLOG, TaskState.IN_PROGRESS)


def card_block_id(task_id: int) -> str:
    return f"card:{task_id}"


def render_card(task: TaskView, *, now: datetime, thread_url: str | None = None, buttons: bool = True,
                pull_request_url: str | None = None) -> list[Block]:
    """Section (title and state details), context (owner, agent, time, cost, links), buttons."""
    blocks = [
        section(truncate(_card_text(task, now, thread_url), CARD_TEXT_MAX), block_id=card_block_id(task.id)),
        context(_facts(task, thread_url, pull_request_url), block_id=f"card_meta:{task.id}"),
    ]
    elements = [_card_button(action, task) for action in CARD_ACTIONS[task.state]] if buttons else []
    if elements:
        blocks.append(actions(elements, block_id=f"card_actions:{task.id}"))
    return blocks


def render_card_compact(task: TaskView, *, thread_url: str | None = None, pull_request_url: str | None = None) -> str:
    """One mrkdwn line for dense columns: id, title, owner and the state's key fact."""
    parts = [f"• *{link(thread_url, task.short_id)}* {safe_text(one_line(task.title), COMPACT_TITLE_MAX)}"]
    parts.append(user_mention(task.owner))
    detail = _compact_detail(task)
    if detail:
        parts.append(detail)
    if pull_request_url:
        parts.append(link(pull_request_url, "PR"))
    return truncate(" · ".join(parts), COMPACT_LINE_MAX)


def title_line(task: TaskView, thread_url: str | None = None) -> str:
    """``✋ *#12* Fix login bug`` with the id linking to the task thread when known."""
    title = safe_text(one_line(task.title), CARD_TITLE_MAX) or "(untitled)"
    return f"{STATE_EMOJI[task.state]} *{link(thread_url, task.short_id)}* {title}"


def diff_line(diff: DiffSummary, files_shown: int = DIFF_FILES_SHOWN) -> str:
    """``+120 −30 · 4 files: `a.py`, `b.py`, `c.py` +1 more``"""
    noun = "file" if diff.files_changed == 1 else "files"
    text = f"+{diff.insertions} −{diff.deletions} · {diff.files_changed} {noun}"
    names = [inline_code(name, 80) for name in diff.files[:files_shown]]
    if names:
        text += ": " + ", ".join(names)
        hidden = max(diff.files_changed, len(diff.files)) - len(names)
        if hidden > 0:
            text += f" +{hidden} more"
    return text


def _card_text(task: TaskView, now: datetime, thread_url: str | None) -> str:
    return "\n".join([title_line(task, thread_url), *_state_lines(task, now)])


def _state_lines(task: TaskView, now: datetime) -> list[str]:
    state = task.state
    since = _since(task)
    if task.queued and state in _WAITING:
        return [f"⏳ queued #{task.queue_position} · waiting {fmt_elapsed(task.state_changed_at, now)}"]
    if state == TaskState.QUEUED:
        return [f"⏳ queued · waiting {fmt_elapsed(task.state_changed_at, now)}"]
    if state == TaskState.BACKLOG:
        return [f"waiting {fmt_elapsed(since, now)}"]
    if state == TaskState.WAITING:
        return [f"⏸️ {waits_for_text(task)} · since {fmt_elapsed(task.state_changed_at, now)}"]
    if state == TaskState.IN_PROGRESS:
        return [f"running {fmt_elapsed(since, now)}"]
    if state == TaskState.BLOCKED:
        waiting = task.pending_interventions
        asks = f"{waiting} question{'s' if waiting != 1 else ''} waiting" if waiting else "waiting for a human"
        return [f"*{asks}* · blocked {fmt_elapsed(task.state_changed_at, now)}"]
    if state == TaskState.AWAITING_REVIEW:
        lines = [f"ready for review {fmt_elapsed(task.state_changed_at, now)} · {inline_code(task.branch)}"]
        if task.diff:
            lines.append(diff_line(task.diff))
        return lines
    if state == TaskState.APPROVING:
        return [f"approving… {inline_code(task.branch)} into {inline_code(task.base_branch)}"]
    if state == TaskState.COMPLETED:
        return [f"completed {fmt_elapsed(task.finished_at or task.state_changed_at, now)} ago"]
    reason = safe_text(one_line(task.failure_reason or "no reason recorded"), FAILURE_REASON_MAX)
    return [f"failed {fmt_elapsed(task.finished_at or task.state_changed_at, now)} ago: {reason}"]


def waits_for_text(task: TaskView) -> str:
    """``waits for #12, #13``: the tasks it was dispatched to wait for."""
    return "waits for " + ", ".join(f"#{d}" for d in task.depends_on) if task.depends_on else "waiting"


def _since(task: TaskView) -> datetime:
    if task.state in (TaskState.IN_PROGRESS, TaskState.BLOCKED) and task.started_at:
        return task.started_at
    return task.state_changed_at


def _facts(task: TaskView, thread_url: str | None, pull_request_url: str | None = None) -> str:
    facts = [user_mention(task.owner), f"🤖 {escape_mrkdwn(task.agent)}", escape_mrkdwn(task.repo)]
    if task.worker and task.state in (TaskState.IN_PROGRESS, TaskState.BLOCKED):   # several workers
        facts.append(f"on {escape_mrkdwn(task.worker)}")
    if task.state in (TaskState.COMPLETED, TaskState.FAILED) and task.started_at and task.finished_at:
        facts.append(f"⏱ ran {fmt_elapsed(task.started_at, task.finished_at)}")
    facts.append(fmt_cost(task.cost_usd))
    if task.attempts > 1:
        facts.append(f"attempt {task.attempts}")
    if thread_url:
        facts.append(link(thread_url, "🧵 thread"))
    if pull_request_url:
        facts.append(link(pull_request_url, "🔀 pull request"))
    return truncate(" · ".join(facts), 1000)


def _compact_detail(task: TaskView) -> str:
    if task.queued and task.state in _WAITING:
        return f"queued #{task.queue_position}"
    if task.state == TaskState.BLOCKED:
        return f"{task.pending_interventions} waiting" if task.pending_interventions else "blocked"
    if task.state == TaskState.WAITING:
        return waits_for_text(task)
    if task.state == TaskState.AWAITING_REVIEW and task.diff:
        return f"+{task.diff.insertions} −{task.diff.deletions}"
    if task.state == TaskState.FAILED and task.failure_reason:
        return safe_text(one_line(task.failure_reason), COMPACT_REASON_MAX)
    return ""


def _card_button(action: ActionId, task: TaskView) -> dict:
    return button(
        _BUTTON_TEXT[action],
        action_id=make_action_id(action, task.id),
        value=str(task.id),
        style=_BUTTON_STYLE.get(action),
        confirm=_confirm_for(action, task),
    )


def _confirm_for(action: ActionId, task: TaskView) -> dict | None:
    title = safe_text(one_line(task.title), 120)
    if action == ActionId.REJECT:
        return confirm_dialog(
            f"Reject {task.short_id}?",
            f"{title}\nThe task moves to Failed; it can be retried later.",
            confirm="Reject",
        )
    if action == ActionId.DISPATCH_ANYWAY:
        return confirm_dialog(
            f"Dispatch {task.short_id} anyway?",
            f"{title}\nIt starts now, without the work of {waits_for_text(task).removeprefix('waits for ')}.",
            confirm="Dispatch anyway", deny="Keep waiting", style="primary")
    if action == ActionId.CANCEL:
        return confirm_dialog(
            f"Cancel {task.short_id}?",
            f"{title}\nThe agent is stopped and the task moves to Failed.",
            confirm="Stop the agent",
        )
    return None
