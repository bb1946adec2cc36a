"""Ephemeral answers to the person who acted: never visible to anyone else."""
from __future__ import annotations

import logging

from orchestrator import TaskpinError

from ..blocks.thread import ephemeral_mrkdwn, ephemeral_text
from ..replies import explain, explain_mrkdwn
from ..services import Services
from ..slack_errors import classify, describe

log = logging.getLogger(__name__)


async def tell(svc: Services, user: str, text: str, *, respond=None, thread_ts: str | None = None,
               channel: str | None = None) -> None:
    """Say `text` (escaped) to `user` alone: through respond() when there is one, else postEphemeral."""
    await _say(svc, user, ephemeral_text(text), respond=respond, thread_ts=thread_ts, channel=channel)


async def _say(svc: Services, user: str, payload: dict, *, respond=None, thread_ts: str | None = None,
               channel: str | None = None) -> None:
    if not user:   # a payload without a user: there is nobody to tell (and chat.postEphemeral needs one)
        log.warning("a refusal had nobody to go to: %s", payload.get("text"))
        return
    try:
        if respond is not None:
            await respond(**payload, response_type="ephemeral", replace_original=False)
        else:
            await svc.client.chat_postEphemeral(channel=channel or svc.channel, user=user, thread_ts=thread_ts,
                                                **payload)
    except Exception as exc:  # telling the user failed; the action itself is settled
        log.warning("could not send an ephemeral message: %s", describe(exc))


async def tell_error(svc: Services, user: str, exc: Exception, verb: str, **kwargs) -> None:
    if classify(exc) is not None:
        log.warning("could not %s: Slack: %s", verb, describe(exc))   # an outage is no bug: one line
    elif not isinstance(exc, (TaskpinError, ValueError)):   # a refusal is no bug; anything else is
        log.exception("unexpected error while trying to %s", verb)
    await _say(svc, user, ephemeral_mrkdwn(explain_mrkdwn(exc, verb), explain(exc, verb)), **kwargs)



async def tell_mrkdwn(svc: Services, user: str, mrkdwn_text: str, fallback: str, **kwargs) -> None:
    """Like tell(), for text the caller escaped already (it may mention users or format code)."""
    await _say(svc, user, ephemeral_mrkdwn(mrkdwn_text, fallback), **kwargs)
