"""The Home tab: the viewer's own tasks first, then the whole board, in pages."""
from __future__ import annotations

import logging
from datetime import UTC, datetime

from .blocks.home import render_home
from .services import Services
from .slack_errors import describe
from .threads import thread_urls

log = logging.getLogger(__name__)


async def publish_home(svc: Services, user: str, *, page: int = 0, quiet: bool = False) -> None:
    """`quiet`: a refresh nobody asked for (a failure is logged at debug level; the next one retries)."""
    tasks = await svc.core.list_tasks()
    by_id = {t.id: t for t in tasks}
    waiting = [(by_id[iv.task_id], iv) for iv in await svc.core.pending_interventions()
               if iv.task_id in by_id and by_id[iv.task_id].owner == user]
    view = render_home(tasks, viewer=user, now=datetime.now(UTC), page=page,
                       thread_urls=await thread_urls(svc.core),
                       pull_request_urls=await svc.core.pull_requests.urls(), waiting=waiting)
    try:
        await svc.client.views_publish(user_id=user, view=view)
    except Exception as exc:
        (log.debug if quiet else log.warning)("could not publish the Home tab for %s: %s", user, describe(exc))
