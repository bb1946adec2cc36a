"""Events: replies in task threads, the Home tab, and the board being unpinned or deleted."""
from __future__ import annotations

import logging

from slack_bolt.async_app import AsyncApp

from orchestrator import Answer, NotAllowed, TaskState

from ..blocks.text import unescape_slack
from ..home import publish_home
from ..services import Services, services_of
from .feedback import tell, tell_error

log = logging.getLogger(__name__)
IGNORED_SUBTYPES = {"message_changed", "bot_message", "channel_join", "channel_leave", "pinned_item",
                    "unpinned_item", "message_replied", "thread_broadcast"}


def register(app: AsyncApp) -> None:
    app.event("message")(on_message)
    app.event("app_home_opened")(on_home_opened)
    app.event("pin_removed")(on_pin_removed)


async def on_message(body, event, context) -> None:
    svc = services_of(context)   # retries and redeliveries were dropped at the gate (bot/gate.py)
    subtype = event.get("subtype")
    if subtype == "message_deleted":
        await svc.board.on_deleted(event.get("deleted_ts") or (event.get("previous_message") or {}).get("ts", ""))
        return
    if subtype in IGNORED_SUBTYPES or event.get("bot_id") or event.get("hidden"):
        return
    thread_ts, user = event.get("thread_ts"), event.get("user")
    if not thread_ts or thread_ts == event.get("ts") or not user or event.get("channel") != svc.channel:
        return
    task_id = await svc.threads.index.task_of(thread_ts)
    if task_id is not None:
        await on_thread_reply(svc, task_id, user, unescape_slack(event.get("text") or ""), thread_ts)


async def on_thread_reply(svc: Services, task_id: int, user: str, text: str, thread_ts: str) -> None:
    """A reply answers the oldest open question; with none open it is a message to the running agent.
    An answer goes to the agent before anything else is read: where the agent runs in this
    process, its open questions and its task are in memory (the core checks who may answer)."""
    core = svc.core
    try:
        pending = await core.pending_interventions(task_id)
        if pending:
            try:
                await core.answer(pending[0].id, Answer(text=text), actor=user)
            except NotAllowed:
                await _not_forwarded(svc, task_id, user, thread_ts)
            return
        task = await core.get_task(task_id)
        if not core.may_decide(task, user):
            await _not_forwarded(svc, task_id, user, thread_ts)
        elif task.state in (TaskState.IN_PROGRESS, TaskState.BLOCKED):   # its agent may run in another process
            if not await core.follow_up(task_id, text, actor=user):
                await tell(svc, user, f"The agent of {task.short_id} cannot take messages while it works; "
                                      "your reply was not delivered.", thread_ts=thread_ts)
        elif task.state is TaskState.AWAITING_REVIEW:
            await tell(svc, user, f"{task.short_id} is awaiting review and no agent is running. Use Request "
                                  "changes on its card to send it feedback.", thread_ts=thread_ts)
    except Exception as exc:
        await tell_error(svc, user, exc, "answer", thread_ts=thread_ts)


async def _not_forwarded(svc: Services, task_id: int, user: str, thread_ts: str) -> None:
    task = await svc.core.get_task(task_id)
    await tell(svc, user, f"Only the owner of {task.short_id} or an approver can talk to its agent; "
                          "your reply was not forwarded.", thread_ts=thread_ts)


async def on_home_opened(event, context) -> None:
    if event.get("tab", "home") == "home":
        await publish_home(services_of(context), event["user"])


async def on_pin_removed(event, context) -> None:
    item = event.get("item") or {}
    ts = (item.get("message") or {}).get("ts") or item.get("ts")
    if ts:
        await services_of(context).board.on_unpinned(ts)
