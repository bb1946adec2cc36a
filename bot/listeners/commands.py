"""/task: quick create, modal, help, list."""
from __future__ import annotations

import logging
from typing import Any

from slack_bolt.async_app import AsyncApp
from slack_sdk.errors import SlackApiError

from orchestrator import TaskState

from ..blocks.card import waits_for_text
from ..blocks.modals import create_task_modal
from ..blocks.text import escape_mrkdwn, inline_code, one_line, truncate
from ..quick_text import QuickTextError, choice_problem, parse
from ..services import Services, services_of
from ..slack_errors import describe
from .feedback import tell, tell_error
from .policy import is_policy_command, policy_command

log = logging.getLogger(__name__)
HELP = (
    "*taskpin* runs coding agents on tasks and shows them on the pinned board.\n"
    "• `/task &lt;what the agent should do&gt;` creates a backlog task with the default repository and agent\n"
    "• `/task repo=NAME agent=NAME branch=BASE &lt;what the agent should do&gt;` picks them in the same line, "
    "e.g. `/task repo=api agent=codex branch=release-2 Fix the flaky login test` (each option is optional)\n"
    "• `/task Fix the API after #12 #13` waits for those tasks: dispatched, it starts when they complete\n"
    "• `/task` opens a form to pick the repository, the agent and the base branch\n"
    "• `/task list` shows your tasks\n"
    "• `/task policy` lists the approval-policy rules; `/task policy remove N` removes one added in Slack\n"
    "• `/task help` shows this\n"
    "Then press *Dispatch* on the card. The agent's questions come to you in the task's thread: "
    "answer with the buttons or a reply there."
)
LIST_LIMIT = 30


def register(app: AsyncApp) -> None:
    app.command("/task")(handle_task_command)


async def handle_task_command(ack, command, respond, context, client) -> None:
    svc = services_of(context)
    text = (command.get("text") or "").strip()
    user = command["user_id"]
    word = text.lower()
    if word in ("help", "?"):
        await ack(text=HELP)
        return
    await ack()
    if not text:
        await open_create_modal(svc, client, command["trigger_id"], user, respond=respond)
    elif word == "list":
        await respond(text=await list_text(svc, user), response_type="ephemeral")
    elif is_policy_command(text):
        await policy_command(svc, user, text, respond)
    else:
        await quick_create(svc, user, text, respond)


async def open_create_modal(svc: Services, client, trigger_id: str, user: str, *, prompt: str = "",
                            respond=None, private_metadata: str = "") -> None:
    if not svc.core.may_use(user):
        await tell(svc, user, "You are not on this taskpin's list of allowed users; ask an admin to add you.",
                   respond=respond)
        return
    settings = svc.core.settings
    view = create_task_modal(repos=svc.core.repo_names(), agents=svc.core.agent_names(),
                             default_repo=settings.default_repo, default_agent=settings.default_agent,
                             prompt=prompt, private_metadata=private_metadata)
    try:
        await client.views_open(trigger_id=trigger_id, view=view)
    except SlackApiError as exc:   # e.g. expired_trigger_id: Slack took longer than 3 s to reach us
        log.warning("could not open the create-task form: %s", describe(exc))
        await tell(svc, user, "Slack did not let taskpin open the form in time; please try again.", respond=respond)


async def quick_create(svc: Services, user: str, text: str, respond) -> None:
    """`/task [repo=…] [agent=…] [branch=…] prompt [after #N…]`: every refusal is one ephemeral line."""
    core, settings = svc.core, svc.core.settings
    try:
        quick = parse(text)
    except QuickTextError as exc:
        await tell(svc, user, f"{str(exc)[:1].upper()}{str(exc)[1:]}. /task help shows the syntax.", respond=respond)
        return
    problems = [choice_problem("repository", "repo", quick.repo, core.repo_names(), settings.default_repo),
                choice_problem("agent", "agent", quick.agent, core.agent_names(), settings.default_agent)]
    problem = next((p for p in problems if p), None)
    if problem:
        await tell(svc, user, f"{problem[:1].upper()}{problem[1:]}.", respond=respond)
        return
    extra: dict[str, Any] = {}
    if quick.depends_on:
        extra["depends_on"] = list(quick.depends_on)
    try:
        task = await core.create_task(prompt=quick.prompt, owner=user, repo=quick.repo, agent=quick.agent,
                                      base_branch=quick.branch, **extra)
    except Exception as exc:
        await tell_error(svc, user, exc, "create a task", respond=respond)
        return
    await respond(text=f"Created *{task.short_id}* {escape_mrkdwn(task.title)} in the backlog "
                       f"({escape_mrkdwn(task.repo)}, {escape_mrkdwn(task.agent)}, from {inline_code(task.base_branch)}). "
                       + (f"It {waits_for_text(task)}: press *Dispatch* and it starts when they complete."
                          if task.depends_on else "Press *Dispatch* on its card to start the agent."),
                  response_type="ephemeral")


async def list_text(svc: Services, user: str) -> str:
    tasks = await svc.core.list_tasks(owner=user)
    if not tasks:
        return "You have no tasks yet. `/task &lt;what the agent should do&gt;` creates one."
    active = [t for t in tasks if t.state is not TaskState.COMPLETED] or tasks
    lines = [f"• *{t.short_id}* {truncate(escape_mrkdwn(one_line(t.title)), 80)} — {t.state.value.replace('_', ' ')}"
             + (f" (queued #{t.queue_position})" if t.queued else "")
             for t in reversed(active[-LIST_LIMIT:])]
    more = len(active) - LIST_LIMIT
    if more > 0:
        lines.append(f"…and {more} more on the Home tab.")
    return "*Your tasks*\n" + "\n".join(lines)
