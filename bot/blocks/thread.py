"""Messages posted in a task's thread: dispatch, progress, output, review and result."""
from __future__ import annotations

from collections.abc import Sequence

from orchestrator.models import TaskView
from orchestrator.states import TaskState

from ..ids import ActionId, make_action_id
from .card import STATE_LABEL, diff_line, waits_for_text
from .kit import Block, actions, button, confirm_dialog, context, section
from .limits import FALLBACK_TEXT_MAX, SECTION_TEXT_MAX
from .text import (
    code_block,
    escape_mrkdwn,
    fmt_cost,
    fmt_duration,
    inline_code,
    link,
    one_line,
    plain,
    safe_text,
    truncate,
    user_mention,
)

TITLE_MAX = 150
MILESTONE_MAX = 2000
REVIEW_FILES_SHOWN = 15
OUTPUT_LINE_MAX = 500


def dispatch_message(task: TaskView, actor: str) -> dict:
    """``#12 Fix login bug, dispatched by @owner to claude-code on `taskpin/12-fix-login` ``"""
    text = (
        f"🚀 *{task.short_id}* {_title(task)}, dispatched by {user_mention(actor)}"
        f" to {escape_mrkdwn(task.agent)} on {inline_code(task.branch)}"
        f" (from {inline_code(task.base_branch)} in {escape_mrkdwn(task.repo)})"
    )
    if task.queued:
        text += f"\n⏳ Queued #{task.queue_position}: it starts when a session slot frees up."
    elif task.state == TaskState.WAITING:
        text += f"\n⏸️ It {waits_for_text(task)} and starts by itself when the last of them completes."
    return _message(text, f"{task.short_id} dispatched to {task.agent}", block_id=f"dispatch:{task.id}")


def milestone_message(task: TaskView, text: str, *, by: str | None = None) -> dict:
    """A short progress note. ``text`` is escaped (a ``<@U1>`` in it shows literally):
    pass the user it concerns as ``by`` to mention them."""
    body = f"🔹 {safe_text(text.strip(), MILESTONE_MAX)}"
    if by:
        body += f" ({user_mention(by)})"
    return _message(body, f"{task.short_id}: {one_line(text)}")


def notice_message(task: TaskView, text: str, *, url: str | None = None, url_text: str | None = None,
                   warning: bool = False) -> dict:
    """A note from the core (orchestrator.TaskNotice): ``⚠️ not copied: .env ...`` or
    ``🔗 pull request opened: <url|acme/api#7>``. Text and label are escaped."""
    body = f"{'⚠️' if warning else '🔗' if url else '🔹'} {safe_text(text.strip(), MILESTONE_MAX)}"
    if url:
        body += f" {link(url, safe_text(url_text or url, 200))}"
    return _message(body, f"{task.short_id}: {one_line(text)}")


def output_summary_message(task: TaskView, lines: Sequence[str]) -> dict:
    """The tail of the agent's output in a code block; older lines are dropped first."""
    kept: list[str] = []
    budget = SECTION_TEXT_MAX - 200  # room for the fences and the heading
    used = 0
    for line in reversed(lines):
        line = plain(line.rstrip(), OUTPUT_LINE_MAX)
        cost = len(line) + 1 + line.count("&") * 4 + line.count("<") * 3 + line.count(">") * 3 + line.count("`")
        if used + cost > budget:
            break
        kept.append(line)
        used += cost
    kept.reverse()
    omitted = len(lines) - len(kept)
    heading = f"📄 *{task.short_id}* agent output"
    if omitted:
        heading += f" (last {len(kept)} of {len(lines)} lines)"
    blocks = [section(heading, block_id=f"output_head:{task.id}")]
    if kept:
        blocks.append(section(code_block("\n".join(kept), SECTION_TEXT_MAX), block_id=f"output:{task.id}"))
    return {"text": f"{task.short_id} agent output", "blocks": blocks}


def review_message(task: TaskView) -> dict:
    """What the agent changed: branch, totals, the changed files."""
    text = f"🔍 *{task.short_id}* {_title(task)} is ready for review on {inline_code(task.branch)}"
    if task.diff:
        text += f"\n{diff_line(task.diff, files_shown=0)}"
        if task.diff.commit:
            text += f" · commit {inline_code(task.diff.commit[:12])}"
        files = [f"• {inline_code(name, 200)}" for name in task.diff.files[:REVIEW_FILES_SHOWN]]
        hidden = max(task.diff.files_changed, len(task.diff.files)) - len(files)
        if hidden > 0:
            files.append(f"• +{hidden} more")
        if files:
            text += "\n" + "\n".join(files)
    else:
        text += "\n_No diff summary was recorded._"
    text += "\nApprove, request changes or reject it from the board."
    return _message(text, f"{task.short_id} is ready for review", block_id=f"review:{task.id}")


def result_message(task: TaskView) -> dict:
    """Where the task ended: completed, or failed and why."""
    if task.state == TaskState.COMPLETED:
        text = f"✅ *{task.short_id}* {_title(task)} is completed."
    elif task.state == TaskState.FAILED:
        reason = safe_text(task.failure_reason or "no reason recorded", 1500)
        text = f"❌ *{task.short_id}* {_title(task)} failed: {reason}\nRetry it from the board."
    else:
        text = f"*{task.short_id}* {_title(task)} is now {STATE_LABEL[task.state].lower()}."
    stats = _stats(task)
    message = _message(text, f"{task.short_id} {STATE_LABEL[task.state].lower()}", block_id=f"result:{task.id}")
    if stats:
        message["blocks"].append(context(stats, block_id=f"result_stats:{task.id}"))
    return message


def ephemeral_text(text: str) -> dict:
    """A short notice for chat.postEphemeral or a respond(); ``text`` is escaped."""
    return _message(safe_text(text, SECTION_TEXT_MAX), text)


def ephemeral_mrkdwn(mrkdwn_text: str, fallback: str) -> dict:
    """A short notice already escaped by the caller (it may mention users); ``fallback`` is plain."""
    return _message(mrkdwn_text, fallback)


def _stats(task: TaskView) -> str:
    parts = []
    if task.started_at and task.finished_at:
        parts.append(f"⏱ {fmt_duration((task.finished_at - task.started_at).total_seconds())}")
    if task.cost_usd:
        parts.append(fmt_cost(task.cost_usd))
    if task.input_tokens or task.output_tokens:
        parts.append(f"{task.input_tokens:,} in / {task.output_tokens:,} out tokens")
    if task.attempts > 1:
        parts.append(f"{task.attempts} attempts")
    return " · ".join(parts)


def _title(task: TaskView) -> str:
    return safe_text(one_line(task.title), TITLE_MAX)


def _message(mrkdwn_text: str, fallback: str, *, block_id: str | None = None) -> dict:
    block: Block = section(truncate(mrkdwn_text, SECTION_TEXT_MAX), block_id=block_id)
    return {"text": safe_text(one_line(fallback), FALLBACK_TEXT_MAX) or "taskpin", "blocks": [block]}


POLICY_LINES_SHOWN = 10


def policy_summary_message(task: TaskView, decisions: Sequence[tuple[str, str | None, str | None, str, str]]) -> dict:
    """What the approval policy answered without asking, one line per request (effect, tool,
    detail, the deciding rule, where it is written), oldest first; past POLICY_LINES_SHOWN, a
    count (the task log has them all)."""
    allowed = sum(1 for effect, *_ in decisions if effect == "allow")
    denied = len(decisions) - allowed
    counts = ", ".join(part for part in (f"{allowed} allowed" if allowed else "",
                                         f"{denied} denied" if denied else "") if part)
    lines = [f"🛡️ *{task.short_id}* taskpin's approval policy answered {len(decisions)} "
             f"request{'s' if len(decisions) != 1 else ''} without asking ({counts}):"]
    for effect, tool, detail, rule, source in decisions[:POLICY_LINES_SHOWN]:
        what = safe_text(one_line(tool or "a tool"), 60) + (f" {inline_code(detail, 150)}" if detail else "")
        verb = "allowed" if effect == "allow" else "denied"
        where = f" ({escape_mrkdwn(one_line(source))})" if source else ""
        lines.append(f"• {'✅' if effect == 'allow' else '🚫'} {what}: {verb} by {inline_code(rule, 150)}{where}")
    hidden = len(decisions) - POLICY_LINES_SHOWN
    if hidden > 0:
        lines.append(f"• +{hidden} more (in the task log)")
    return {"text": f"{task.short_id}: the approval policy answered {len(decisions)} requests ({counts})",
            "blocks": [context(truncate("\n".join(lines), 3000), block_id=f"policy:{task.id}")]}   # quiet: small


def dependency_failed_message(task: TaskView, dependency: TaskView) -> dict:
    """A dependency failed: the task keeps waiting until someone decides, with the buttons to."""
    reason = safe_text(one_line(dependency.failure_reason or "no reason recorded"), 300)
    text = (f"⚠️ *{dependency.short_id}* {_title(dependency)}, which *{task.short_id}* waits for, failed: {reason}.\n"
            f"{task.short_id} keeps waiting: it starts by itself if {dependency.short_id} is retried and completes. "
            "Dispatch it anyway, or cancel it.")
    controls = actions([button("Dispatch anyway", action_id=make_action_id(ActionId.DISPATCH_ANYWAY, task.id),
                               value=str(task.id), style="primary"),
                        button("Cancel", action_id=make_action_id(ActionId.CANCEL, task.id), value=str(task.id),
                               style="danger", confirm=confirm_dialog(
                                   f"Cancel {task.short_id}?", "It moves to Failed; it can be retried later.",
                                   confirm="Cancel it"))], block_id=f"dependency_actions:{task.id}:{dependency.id}")
    message = _message(text, f"{task.short_id}: {dependency.short_id}, which it waits for, failed",
                       block_id=f"dependency:{task.id}:{dependency.id}")
    message["blocks"].append(controls)
    return message
