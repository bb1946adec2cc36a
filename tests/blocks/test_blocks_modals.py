import pytest

from bot.blocks.limits import validate_view
from bot.blocks.modals import create_task_modal, modal_values, request_changes_modal
from bot.ids import CallbackId, InputId
from orchestrator.states import TaskState

from .block_factories import NASTY_TITLE, build_task


def _block(view, block_id):
    return next(b for b in view["blocks"] if b.get("block_id") == block_id)


def test_create_task_modal():
    view = create_task_modal(repos=["taskpin", "web"], agents=["claude-code", "codex"],
                             default_repo="web", default_agent="codex", prompt="p" * 5000, title="Fix\nit")
    validate_view(view)
    assert view["callback_id"] == CallbackId.CREATE_TASK_MODAL
    assert _block(view, InputId.REPO)["element"]["initial_option"]["value"] == "web"
    assert _block(view, InputId.AGENT)["element"]["initial_option"]["value"] == "codex"
    assert len(_block(view, InputId.PROMPT)["element"]["initial_value"]) == 3000
    assert _block(view, InputId.TITLE)["element"]["initial_value"] == "Fix it"
    assert _block(view, InputId.BASE_BRANCH)["optional"] is True


def test_create_task_modal_without_a_usable_list_falls_back_to_text():
    view = create_task_modal(repos=[f"r{i}" for i in range(150)], agents=[], default_repo="r3", default_agent=None)
    validate_view(view)
    assert _block(view, InputId.REPO)["element"]["type"] == "plain_text_input"
    assert _block(view, InputId.AGENT)["element"]["type"] == "plain_text_input"
    with pytest.raises(ValueError):
        create_task_modal(repos=["a"], agents=["b"], default_repo="a", default_agent="b", private_metadata="x" * 3001)


def test_request_changes_modal():
    view = request_changes_modal(build_task(42, TaskState.AWAITING_REVIEW, title=NASTY_TITLE))
    validate_view(view)
    assert view["private_metadata"] == "42"
    assert view["callback_id"] == CallbackId.REQUEST_CHANGES_MODAL
    assert "<!channel>" not in view["blocks"][0]["text"]["text"]


def test_modal_values():
    view = {"state": {"values": {
        "title": {"title": {"type": "plain_text_input", "value": " Fix "}},
        "repo": {"repo": {"type": "static_select", "selected_option": {"value": "web"}}},
        "base_branch": {"base_branch": {"type": "plain_text_input", "value": None}},
    }}}
    assert modal_values(view) == {"title": "Fix", "repo": "web"}
