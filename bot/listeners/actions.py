"""Buttons: on cards (value = task id) and on intervention messages (value = intervention:option)."""
from __future__ import annotations

import logging

from slack_bolt.async_app import AsyncApp

from orchestrator import Answer, IllegalTransition, TaskState

from ..blocks.modals import request_changes_modal
from ..home import publish_home
from ..ids import ActionId, action_pattern, decode_option_value, parse_id, task_id_from_value
from ..services import Services, services_of
from .commands import open_create_modal
from .feedback import tell, tell_error
from .policy import on_answer_always

log = logging.getLogger(__name__)
NOT_OURS = "That button is not one taskpin made."
HOME_PAGES_MAX = 10_000


def register(app: AsyncApp) -> None:
    app.action(action_pattern(ActionId.DISPATCH))(on_dispatch)
    app.action(action_pattern(ActionId.DISPATCH_ANYWAY))(on_dispatch_anyway)
    app.action(action_pattern(ActionId.CANCEL))(on_cancel)
    app.action(action_pattern(ActionId.RETRY))(on_retry)
    app.action(action_pattern(ActionId.APPROVE))(on_approve)
    app.action(action_pattern(ActionId.REJECT))(on_reject)
    app.action(action_pattern(ActionId.REQUEST_CHANGES))(on_request_changes)
    app.action(action_pattern(ActionId.ANSWER_OPTION))(on_answer_option)
    app.action(action_pattern(ActionId.ANSWER_SELECT))(on_answer_option)
    app.action(action_pattern(ActionId.ANSWER_SUBMIT))(on_answer_submit)
    app.action(action_pattern(ActionId.ANSWER_ALWAYS))(on_answer_always)
    app.action(action_pattern(ActionId.ANSWER_CHECKBOXES))(ack_only)
    app.action(action_pattern(ActionId.OPEN_THREAD))(ack_only)
    app.action(action_pattern(ActionId.HOME_PAGE))(on_home_page)
    app.action(action_pattern(ActionId.OPEN_CREATE_MODAL))(on_open_create_modal)


async def ack_only(ack) -> None:
    await ack()


def _card_action(verb: str, call):
    """A card button: ack at once, then one core call; a refusal is told to the clicker alone."""

    async def handler(ack, body, action, respond, context) -> None:
        await ack()
        svc, user = services_of(context), body["user"]["id"]
        try:
            task_id = task_id_from_value(action.get("value"))
        except ValueError:
            await tell(svc, user, NOT_OURS, respond=respond)
            return
        try:
            await call(svc, task_id, user)
        except Exception as exc:
            await tell_error(svc, user, exc, verb, respond=respond)

    handler.__name__ = f"on_{verb.replace(' ', '_')}"
    return handler


on_dispatch = _card_action("dispatch", lambda svc, tid, user: svc.core.dispatch(tid, actor=user))
on_dispatch_anyway = _card_action("dispatch", lambda svc, tid, user: svc.core.dispatch(tid, actor=user,
                                                                                      anyway=True))
on_dispatch_anyway.__name__ = "on_dispatch_anyway"
on_cancel = _card_action("cancel", lambda svc, tid, user: svc.core.cancel(tid, actor=user))
on_retry = _card_action("retry", lambda svc, tid, user: svc.core.retry(tid, actor=user))
on_approve = _card_action("approve", lambda svc, tid, user: svc.core.approve(tid, actor=user))
on_reject = _card_action("reject", lambda svc, tid, user: svc.core.reject(tid, actor=user))


async def on_request_changes(ack, body, action, respond, context, client) -> None:
    await ack()
    svc, user = services_of(context), body["user"]["id"]
    try:
        task_id = task_id_from_value(action.get("value"))
    except ValueError:
        await tell(svc, user, NOT_OURS, respond=respond)
        return
    try:
        task = await svc.core.get_task(task_id)
        if task.state is not TaskState.AWAITING_REVIEW:
            raise IllegalTransition(task.id, task.state, TaskState.QUEUED)
        if not svc.core.may_decide(task, user):
            await tell(svc, user, f"Only the owner of {task.short_id} or an approver can request changes.",
                       respond=respond)
            return
        await client.views_open(trigger_id=body["trigger_id"], view=request_changes_modal(task))
    except Exception as exc:
        await tell_error(svc, user, exc, "request changes on", respond=respond)


async def on_answer_option(ack, body, action, respond, context) -> None:
    await ack()
    svc, user = services_of(context), body["user"]["id"]
    value = action.get("value") or (action.get("selected_option") or {}).get("value", "")
    if not value:
        await tell(svc, user, NOT_OURS, respond=respond)
        return
    await _answer(svc, user, [value], respond)


async def on_answer_submit(ack, body, action, respond, context) -> None:
    """Multi-select: the chosen checkboxes are in the message's state."""
    await ack()
    svc, user = services_of(context), body["user"]["id"]
    chosen = []
    for block in ((body.get("state") or {}).get("values") or {}).values():
        for element in block.values():
            chosen += [o["value"] for o in element.get("selected_options") or []]
    if not chosen:
        await tell(svc, user, "Tick at least one option, then press Submit.", respond=respond)
        return
    await _answer(svc, user, chosen, respond)


async def _answer(svc: Services, user: str, values: list[str], respond) -> None:
    try:
        refs = [decode_option_value(v) for v in values]
        intervention = await svc.core.get_intervention(refs[0].intervention_id)
        if intervention is None:
            await tell(svc, user, "That question no longer exists.", respond=respond)
            return
        option_ids = tuple(filter(None, (ref.resolve(intervention.options) for ref in refs)))
        await svc.core.answer(intervention.id, Answer(option_ids=option_ids), actor=user)
    except ValueError:
        await tell(svc, user, NOT_OURS, respond=respond)
    except Exception as exc:
        await tell_error(svc, user, exc, "answer", respond=respond)


async def on_home_page(ack, body, action, context) -> None:
    await ack()
    try:
        page = min(parse_id(action.get("value") or "0", lowest=0), HOME_PAGES_MAX)
    except ValueError:
        page = 0
    await publish_home(services_of(context), body["user"]["id"], page=page)


async def on_open_create_modal(ack, body, context, client) -> None:
    await ack()
    await open_create_modal(services_of(context), client, body["trigger_id"], body["user"]["id"])
