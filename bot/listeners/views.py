"""Modal submissions: create a task, request changes. Field errors go back into the modal."""
from __future__ import annotations

import re

from slack_bolt.async_app import AsyncApp

from orchestrator import InvalidInput, NotAllowed

from ..blocks.card import waits_for_text
from ..blocks.modals import modal_values
from ..ids import CallbackId, InputId, parse_id
from ..services import services_of
from .feedback import tell, tell_error


def register(app: AsyncApp) -> None:
    app.view(CallbackId.CREATE_TASK_MODAL.value)(on_create_task)
    app.view(CallbackId.REQUEST_CHANGES_MODAL.value)(on_request_changes)


def task_ids(text: str) -> list[int]:
    """``#12 #13`` (or ``12, 13``) -> [12, 13]; ValueError saying how to write them."""
    words = [w for w in re.split(r"[\s,]+", text.strip()) if w and w.lower() != "and"]
    bad = next((w for w in words if not re.fullmatch(r"#?[0-9]{1,10}", w)), None)
    if bad is not None:
        raise ValueError(f"{bad[:20]} is not a task id: write them like #12 #13")
    if any(int(w.lstrip("#")) == 0 for w in words):
        raise ValueError("task ids start at #1")
    return [parse_id(w.lstrip("#")) for w in words]


def field_for(exc: InvalidInput) -> InputId:
    """The modal input an InvalidInput is about: the core names it (`field`); the prompt
    when it names none this modal has."""
    return next((field for field in InputId if field.value == exc.field), InputId.PROMPT)


async def on_create_task(ack, body, view, context) -> None:
    svc, user = services_of(context), body["user"]["id"]
    values = modal_values(view)
    # Created before the ack so that a bad field can be shown in the modal itself; the
    # insert takes milliseconds, far inside the 3 s ack window.
    try:
        depends_on = task_ids(values.get(InputId.DEPENDS_ON, ""))
    except ValueError as exc:
        await ack(response_action="errors", errors={InputId.DEPENDS_ON.value: str(exc)[:150]})
        return
    try:
        task = await svc.core.create_task(prompt=values.get(InputId.PROMPT, ""), title=values.get(InputId.TITLE),
                                          repo=values.get(InputId.REPO), agent=values.get(InputId.AGENT),
                                          base_branch=values.get(InputId.BASE_BRANCH), owner=user,
                                          depends_on=depends_on)
    except InvalidInput as exc:
        await ack(response_action="errors", errors={field_for(exc).value: str(exc)[:150]})
        return
    except NotAllowed as exc:
        await ack(response_action="errors", errors={InputId.PROMPT.value: str(exc)[:150]})
        return
    except Exception as exc:
        await ack()
        await tell_error(svc, user, exc, "create a task")
        return
    await ack()
    waits = f"It {waits_for_text(task)}: press Dispatch and it starts when they complete." if task.depends_on \
        else "Press Dispatch on its card to start the agent."
    await tell(svc, user, f"Created {task.short_id} {task.title} in the backlog ({task.repo}, {task.agent}). {waits}")


async def on_request_changes(ack, body, view, context) -> None:
    svc, user = services_of(context), body["user"]["id"]
    feedback = modal_values(view).get(InputId.FEEDBACK, "")
    if not feedback:
        await ack(response_action="errors", errors={InputId.FEEDBACK.value: "Say what should change."})
        return
    await ack()
    try:
        task = await svc.core.request_changes(parse_id(view.get("private_metadata")), feedback, actor=user)
    except Exception as exc:
        await tell_error(svc, user, exc, "request changes on")
        return
    await tell(svc, user, f"Sent your feedback to the agent of {task.short_id}; it is working on it.")


