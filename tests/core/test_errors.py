"""One error contract: everything the core refuses is a TaskpinError, and a refused input
names its field, so a form puts the message next to it without reading the English."""
from __future__ import annotations

import pytest

from bot.ids import InputId
from orchestrator import (
    ActionRefused,
    IllegalTransition,
    InvalidInput,
    NotAllowed,
    TaskNotFound,
    TaskpinError,
    TaskState,
)

from .helpers import make_settings, scripted, started


def test_every_refusal_shares_one_root():
    for error in (IllegalTransition(1, TaskState.BACKLOG, TaskState.COMPLETED), TaskNotFound(1),
                  NotAllowed("no"), InvalidInput("bad", field="title"), ActionRefused("cannot")):
        assert isinstance(error, TaskpinError)


@pytest.mark.parametrize(("given", "field"), [
    ({"prompt": "  "}, "prompt"),
    ({"prompt": "x" * 40_001}, "prompt"),
    ({"prompt": "ok", "title": "t" * 201}, "title"),
    ({"prompt": "ok", "repo": "nope"}, "repo"),
    ({"prompt": "ok", "agent": "nope"}, "agent"),
    ({"prompt": "ok", "base_branch": "bad branch.."}, "base_branch"),
])
async def test_a_refused_input_names_its_field(tmp_path, git_repo, given, field):
    core = await started(make_settings(tmp_path, git_repo, {"bot": scripted([{"finish": "ok"}])}))
    try:
        with pytest.raises(InvalidInput) as refused:
            await core.create_task(owner="U1", **given)
        assert refused.value.field == field
        assert InputId(field)   # the create modal has an input of that name
        task = await core.create_task(prompt="ok", owner="U1")
        with pytest.raises(InvalidInput) as refused:
            await core.request_changes(task.id, " ", actor="U1")
        assert refused.value.field == InputId.FEEDBACK.value
        with pytest.raises(TaskNotFound):
            await core.get_task(10**6)
    finally:
        await core.close()
