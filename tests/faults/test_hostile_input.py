"""Hostile input gets a clean refusal: never a 500, a traceback, or a Web API call for nobody."""
from __future__ import annotations

import asyncio
import copy
import uuid

import aiohttp
import pytest

from bot.emulator.http_delivery import sign
from bot.ids import ActionId, make_action_id, parse_id
from orchestrator import TaskState
from tests.core.helpers import scripted
from tests.e2e.conftest import BOARD, OWNER, emu, taskpin  # noqa: F401  (fixtures)
from tests.e2e.scenario import click_card, create_by_slash

S = TaskState


def tracebacks(caplog) -> list[str]:
    return [f"{r.name}: {r.getMessage()}" for r in caplog.records if r.exc_info]


@pytest.mark.parametrize("stamp", ["abc", "", "12abc", "1e9", " 123", "-5", "١٢٣", "9" * 40])
async def test_a_malformed_request_timestamp_is_401_not_500(emu, taskpin, caplog, stamp):
    await taskpin.start(socket=False)
    body = '{"type":"event_callback","event":{"type":"app_home_opened","user":"U_OWNER"}}'
    headers = {"Content-Type": "application/json", "X-Slack-Request-Timestamp": stamp,
               "X-Slack-Signature": sign(emu.signing_secret, stamp, body)}
    async with aiohttp.ClientSession() as http:
        async with http.post(f"http://127.0.0.1:{taskpin.runtime.port}/slack/events", data=body,
                             headers=headers) as resp:
            assert resp.status == 401, await resp.text()
    assert tracebacks(caplog) == []


async def test_a_correctly_signed_request_still_passes_the_timestamp_check(emu, taskpin):
    await taskpin.start(socket=False)
    ack = await emu.open_home(OWNER)
    assert ack.acked and ack.http_status == 200


@pytest.mark.parametrize("value", ["9" * 30, str(2**31), "99999999999", "-1", "0", "1e3", "", "1 ", "٣"])
def test_ids_outside_the_store_range_are_not_ids(value):
    with pytest.raises(ValueError):
        parse_id(value)


def _tampered(payload: dict, **changes) -> dict:
    """A copy with fields changed (``a__0__b`` is ``p["a"][0]["b"]``); a fresh trigger_id, as a
    new gesture would carry, so the copy is not taken for a redelivery of the original."""
    p = copy.deepcopy(payload)
    if "trigger_id" in p:
        p["trigger_id"] = f"{p['trigger_id']}.{uuid.uuid4().hex[:12]}"
    for path, value in changes.items():
        target = p
        *parents, last = path.split("__")
        for key in parents:
            target = target[int(key)] if isinstance(target, list) else target[key]
        if value is DELETE:
            target.pop(int(last) if isinstance(target, list) else last, None)
        else:
            target[int(last) if isinstance(target, list) else last] = value
    return p


DELETE = object()


async def _a_real_click(emu, taskpin) -> tuple[int, dict]:
    """Dispatch a task by a real click and return the click's payload, to replay tampered."""
    await taskpin.start({"bot": scripted([{"finish": "done"}])})
    task_id = await create_by_slash(emu, taskpin.core, "A task")
    ack = await click_card(emu, OWNER, ActionId.DISPATCH, task_id)
    assert ack.acked
    # The click is acked before it acts: wait for the dispatch itself, or a late one would look
    # like the tampered replay acting.
    for _ in range(500):
        if any(t.to_state is S.IN_PROGRESS for t in await taskpin.core.history(task_id)):
            break
        await asyncio.sleep(0.02)
    else:
        raise AssertionError("the real click never dispatched the task")
    return task_id, ack.delivery.payload


async def _back_in_backlog(core, task_id: int) -> None:
    """So that a replayed Dispatch click would act, if it were let through."""
    task = await core.get_task(task_id)
    while task.state is not S.BACKLOG:
        if task.state is S.AWAITING_REVIEW:
            await core.reject(task_id, actor=OWNER)
        elif task.state is S.FAILED:
            await core.retry(task_id, actor=OWNER)
        await asyncio.sleep(0.02)
        task = await core.get_task(task_id)


async def test_a_huge_number_in_a_button_is_refused_in_words(emu, taskpin, caplog):
    task_id, real = await _a_real_click(emu, taskpin)
    await _back_in_backlog(taskpin.core, task_id)
    before = len(emu.ephemerals(user=OWNER))
    hostile = ("9" * 30, str(2**63), "99999999999", "-1", "1e3")   # a response_url takes 5 replies
    for value in hostile:
        ack = await emu.deliver("interactive", _tampered(real, actions__0__value=value))
        assert ack.acked and ack.latency < 3
    told = await emu.wait_for(lambda: len(emu.ephemerals(user=OWNER)) >= before + len(hostile)
                              and emu.ephemerals(user=OWNER), timeout=5)
    assert all("not one taskpin made" in emu.text_of(m) for m in told[before:])
    assert (await taskpin.core.get_task(task_id)).state is S.BACKLOG
    # Intervention answers carry ids too.
    for value in (f"{'9' * 30}:x", f"1#{'9' * 30}", "abc", ""):
        act = dict(real["actions"][0], action_id=make_action_id(ActionId.ANSWER_OPTION, 1, 0), value=value)
        ack = await emu.deliver("interactive", _tampered(real, actions=[act]))
        assert ack.acked
    assert tracebacks(caplog) == []


@pytest.mark.parametrize("change", [
    {"user": DELETE}, {"user": None}, {"user__id": None}, {"user__id": 12}, {"user": "U_OWNER"},
    {"trigger_id": DELETE}, {"trigger_id": None}, {"actions": DELETE}, {"actions": []}, {"actions": None},
    {"actions__0__action_id": None}, {"actions__0__value": 7}, {"channel": "C_BOARD"}, {"state": []},
])
async def test_block_actions_missing_fields_are_refused_without_a_call(emu, taskpin, caplog, change):
    task_id, real = await _a_real_click(emu, taskpin)
    await _back_in_backlog(taskpin.core, task_id)
    calls = len(emu.calls)
    ack = await emu.deliver("interactive", _tampered(real, **change))
    assert ack.acked and ack.latency < 3
    assert not [c for c in emu.calls[calls:] if c.method in ("chat.postEphemeral", "views.open")
                and not c.params.get("user")]
    assert (await taskpin.core.get_task(task_id)).state is S.BACKLOG, "a malformed click must not act"
    assert tracebacks(caplog) == []


@pytest.mark.parametrize("change", [{"user_id": DELETE}, {"user_id": ""}, {"user_id": "U 1"}, {"trigger_id": DELETE},
                                    {"trigger_id": ""}, {"text": 5}])
async def test_slash_commands_missing_fields_are_refused(emu, taskpin, caplog, change):
    await taskpin.start()
    ack = await emu.slash_command(OWNER, "/task", "Write the docs")
    await emu.wait_for(lambda: emu.ephemerals(user=OWNER), timeout=5)
    calls = len(emu.calls)
    ack = await emu.deliver("slash_commands", _tampered(ack.delivery.payload, **change))
    assert ack.acked and ack.latency < 3
    assert not [c for c in emu.calls[calls:] if c.method in ("chat.postEphemeral", "views.open")]
    assert len(await taskpin.core.list_tasks()) == 1
    assert tracebacks(caplog) == []


async def test_an_expired_trigger_is_one_line_and_a_word_to_the_user(emu, taskpin, caplog):
    await taskpin.start()
    ack = await emu.slash_command(OWNER, "/task", "list")
    ack = await emu.deliver("slash_commands", _tampered(ack.delivery.payload, text=None))   # opens the form
    assert ack.acked
    told = await emu.wait_for(lambda: [e for e in emu.ephemerals(user=OWNER) if "open the form" in emu.text_of(e)],
                              timeout=5)
    assert told and tracebacks(caplog) == []


@pytest.mark.parametrize("change", [{"view": DELETE}, {"view": None}, {"view__state": "x"},
                                    {"view__state__values": None}, {"user": None}, {"view__private_metadata": 5}])
async def test_view_submissions_missing_fields_are_refused(emu, taskpin, caplog, change):
    await taskpin.start()
    await emu.slash_command(OWNER, "/task", "")
    [view] = await emu.wait_for(lambda: emu.views(OWNER), timeout=5)
    view_id = view["id"]
    ack = await emu.submit_view(OWNER, view_id, {"prompt": "first"})
    assert ack.acked
    await emu.wait_for(lambda: len(emu.ephemerals(user=OWNER)) >= 1, timeout=5)
    tasks = len(await taskpin.core.list_tasks())
    ack = await emu.deliver("interactive", _tampered(ack.delivery.payload, **change))
    assert ack.acked and ack.latency < 3
    assert len(await taskpin.core.list_tasks()) == tasks
    assert tracebacks(caplog) == []
