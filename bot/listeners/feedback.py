"""Ephemeral answers to the person who acted: never visible to anyone else."""
from __future__ import annotations

import logging

from ..blocks.thread import ephemeral_text
from ..replies import explain
from ..services import Services
from ..slack_errors import classify, describe

log = logging.getLogger(__name__)


async def tell(svc: Services, user: str, text: str, *, respond=None, thread_ts: str | None = None,
               channel: str | None = None) -> None:
    """Say `text` (escaped) to `user` alone: through respond() when there is one, else postEphemeral."""
    payload = ephemeral_text(text)
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
    elif not isinstance(exc, (LookupError, ValueError)) and type(exc).__module__.split(".")[0] != "orchestrator":
        log.exception("unexpected error while trying to %s", verb)
    await tell(svc, user, explain(exc, verb), **kwargs)
