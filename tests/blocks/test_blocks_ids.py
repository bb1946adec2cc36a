import pytest

from bot.ids import (
    ACTION_PATTERNS,
    ActionId,
    CallbackId,
    OptionRef,
    decode_option_value,
    encode_option_value,
    make_action_id,
    parse_action_id,
)
from orchestrator.models import Option


def test_action_ids_round_trip():
    action_id = make_action_id(ActionId.REQUEST_CHANGES, 42)
    assert action_id == "task_request_changes:42"
    assert parse_action_id(action_id) == (ActionId.REQUEST_CHANGES, "42")
    assert parse_action_id("home_create_task") == (ActionId.OPEN_CREATE_MODAL, "")


def test_unknown_action_id_is_refused():
    with pytest.raises(ValueError):
        parse_action_id("nope:1")


def test_each_pattern_matches_only_its_own_action():
    samples = {action: [make_action_id(action), make_action_id(action, 7), make_action_id(action, 7, 3)] for action in ActionId}
    for action, pattern in ACTION_PATTERNS.items():
        for other, ids in samples.items():
            for action_id in ids:
                assert bool(pattern.match(action_id)) == (other == action), (action, action_id)
    assert not ACTION_PATTERNS[ActionId.DISPATCH].match("task_dispatchx:1")


def test_shortcut_callback_id():
    assert CallbackId.CREATE_TASK_SHORTCUT == "create_agent_task"


@pytest.mark.parametrize("option_id", ["allow", "allow:once", "a#b%c d", "ünïcødé", ":", ""])
def test_option_values_round_trip(option_id):
    value = encode_option_value(12, option_id, 3)
    ref = decode_option_value(value)
    assert ref == OptionRef(12, option_id=option_id)
    assert ref.resolve([Option(id=option_id, label="x")]) == option_id


def test_long_option_ids_fall_back_to_their_index():
    options = [Option(id="a", label="A"), Option(id="x" * 500, label="Long")]
    value = encode_option_value(12, options[1].id, 1)
    assert len(value) <= 150
    ref = decode_option_value(value)
    assert ref.index == 1 and ref.resolve(options) == "x" * 500
    assert len(encode_option_value(12, "x" * 500, 1, limit=2000)) > 150  # buttons have room


def test_option_ref_refuses_unknown_options():
    assert OptionRef(1, option_id="gone").resolve([Option(id="a", label="A")]) is None
    assert OptionRef(1, index=5).resolve([Option(id="a", label="A")]) is None
    with pytest.raises(ValueError):
        decode_option_value("garbage")
