"""Property-based: well-formed but hostile payloads, through the real app, against a real store.

Each example takes a payload the emulator really sent (a slash command, a click on each kind of
button, a modal submission, a thread reply, a shortcut, a Home tab event), mutates it (keys
deleted; values replaced by nulls, huge or negative integers, random text, lists, objects) and
delivers it to the running taskpin over Socket Mode. Properties:

- every delivery is acked within Slack's 3 s;
- nothing is logged with a traceback, nothing at ERROR;
- no Web API call goes out for nobody (chat.postEphemeral without a user) and no render is
  refused by Slack's Block Kit checks (the emulator validates every message);
- afterwards taskpin still works (a real /task creates a task) and the pinned board agrees
  with the store, task for task.

TASKPIN_FUZZ_EXAMPLES sets the examples per payload kind (default 20; try 500).
"""
from __future__ import annotations

import asyncio
import copy
import logging
import os
import subprocess
import threading
from collections import Counter

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from bot.blocks.card import STATE_LABEL
from bot.emulator import SlackEmulator
from bot.ids import ActionId, CallbackId, make_action_id
from bot.runtime import Runtime
from orchestrator.states import STATE_ORDER, TaskState, column_of
from tests.core.helpers import make_settings, scripted, wait_state
from tests.e2e.conftest import BOARD, OWNER, slack_settings

S = TaskState
EXAMPLES = int(os.environ.get("TASKPIN_FUZZ_EXAMPLES", "20"))
BAD_RENDER_ERRORS = {"invalid_blocks", "invalid_blocks_format", "msg_too_long", "invalid_arguments"}
HOSTILE_TEXT = ["", " ", "9" * 30, str(2**63), str(2**31), "-1", "0", "1e3", "<!channel>", "<@U_OWNER>",
                "1:x", "1#99999999999", "task_dispatch:1", "null", "{}", "\u202e", "a" * 5000, "list", "help"]

FUZZ = settings(max_examples=EXAMPLES, deadline=None, derandomize=not os.environ.get("TASKPIN_FUZZ_RANDOM"),
                suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture])

leaves = st.one_of(st.none(), st.booleans(), st.integers(min_value=-2**70, max_value=2**70),
                   st.floats(allow_nan=False, allow_infinity=False), st.text(max_size=40),
                   st.sampled_from(HOSTILE_TEXT))
values = st.recursive(leaves, lambda inner: st.lists(inner, max_size=3)
                      | st.dictionaries(st.text(max_size=8), inner, max_size=3), max_leaves=6)


# ---- a taskpin that lives for the whole module, on a loop of its own -------------------------

class World:
    """The emulator and the real runtime on a background event loop; tests call in from Hypothesis."""

    def __init__(self, tmp_path):
        self.tmp_path = tmp_path
        self.loop = asyncio.new_event_loop()
        self.thread = threading.Thread(target=self.loop.run_forever, name="fuzz-world", daemon=True)
        self.problems: list[str] = []
        self.templates: dict[str, list[tuple[str, dict]]] = {}

    def run(self, coro, timeout: float = 60):
        return asyncio.run_coroutine_threadsafe(coro, self.loop).result(timeout)

    async def start(self) -> None:
        repo = self.tmp_path / "repo"
        repo.mkdir()
        for args in (["init", "-q", "-b", "main"], ["config", "user.email", "d@e.x"], ["config", "user.name", "D"]):
            subprocess.run(["git", *args], cwd=repo, check=True)
        (repo / "README.md").write_text("hi\n")
        subprocess.run(["git", "add", "-A"], cwd=repo, check=True)
        subprocess.run(["git", "commit", "-qm", "init"], cwd=repo, check=True)
        self.emu = await SlackEmulator(rate_limits=False, ack_timeout=3.0).__aenter__()
        agent = scripted([{"ask": {"id": "q", "kind": "question", "prompt": "Which?", "options": ["a", "b"]}},
                          {"finish": "done"}])
        core_settings = make_settings(self.tmp_path, repo, {"bot": agent}, approvers=["U_APPROVER"],
                                      max_concurrent_sessions=2)
        self.runtime = await Runtime.start(core_settings, slack_settings(self.emu))
        await self.emu.wait_socket()
        await self._capture_templates()

    async def _capture_templates(self) -> None:
        emu, core = self.emu, self.runtime.core
        t = self.templates
        slash = await emu.slash_command(OWNER, "/task", "Fuzz target")
        t["slash_commands"] = [("slash_commands", slash.delivery.payload)]
        [task] = await core.list_tasks()
        board = await emu.wait_for(lambda: emu.pinned(BOARD), timeout=10)
        board_ts = board[0]["ts"]
        action_id = make_action_id(ActionId.DISPATCH, task.id)
        await emu.wait_for(lambda: action_id in str(emu.message(BOARD, board_ts)), timeout=10)
        click = await emu.click_button(OWNER, BOARD, board_ts, action_id, str(task.id))
        await wait_state(core, task.id, S.BLOCKED)   # the agent asks: a question to aim at
        base = click.delivery.payload
        t["block_actions"] = []
        for action in ActionId:
            p = copy.deepcopy(base)
            p["actions"][0].update(action_id=make_action_id(action, task.id), value=str(task.id))
            t["block_actions"].append(("interactive", p))
        [iv] = await core.pending_interventions(task.id)
        p = copy.deepcopy(base)
        p["actions"][0].update(action_id=make_action_id(ActionId.ANSWER_OPTION, iv.id, 0), value=f"{iv.id}:a")
        t["block_actions"].append(("interactive", p))
        await emu.slash_command(OWNER, "/task", "")
        [view] = await emu.wait_for(lambda: emu.views(OWNER), timeout=5)
        submit = await emu.submit_view(OWNER, view["id"], {"prompt": "From the form"})
        t["view_submission"] = [("interactive", submit.delivery.payload)]
        changes = copy.deepcopy(submit.delivery.payload)
        changes["view"].update(callback_id=CallbackId.REQUEST_CHANGES_MODAL.value, private_metadata=str(task.id))
        t["view_submission"].append(("interactive", changes))
        thread = next(m for m in emu.messages(BOARD) if f"#{task.id}" in emu.text_of(m) and "dispatched" in
                      emu.text_of(m))
        reply = await emu.user_message(OWNER, BOARD, "pick a", thread_ts=thread["ts"])
        t["message"] = [("events_api", reply.delivery.payload)]
        home = await emu.open_home(OWNER)
        t["message"].append(("events_api", home.delivery.payload))
        shortcut = await emu.message_shortcut(OWNER, BOARD, thread["ts"], CallbackId.CREATE_TASK_SHORTCUT.value)
        t["shortcut"] = [("interactive", shortcut.delivery.payload)]
        t["shortcut"].append(("interactive", {**copy.deepcopy(shortcut.delivery.payload), "type": "shortcut"}))

    async def deliver(self, kind: str, payload: dict):
        """A fresh trigger and event id (else the gate takes the delivery for a redelivery)."""
        user = OWNER
        if "trigger_id" in payload and isinstance(payload["trigger_id"], str):
            payload["trigger_id"] = self.emu.ws.issue_trigger(user)
        if "event_id" in payload and isinstance(payload["event_id"], str):
            payload["event_id"] = f"Ev{os.urandom(6).hex()}"
        calls = len(self.emu.calls)
        ack = await self.emu.deliver(kind, payload, expect_ack=False)
        await asyncio.sleep(0)   # let the handler's own calls start
        return ack, calls

    async def settle(self) -> None:
        """Let handlers and background work finish (acks come first, work a moment later)."""
        await self.runtime.core.bus.drain()
        await asyncio.sleep(0.05)

    def web_api_problems(self, since: int) -> list[str]:
        found = []
        for call in self.emu.calls[since:]:
            if call.method == "chat.postEphemeral" and not call.params.get("user"):
                found.append(f"chat.postEphemeral with no user: {call.params}")
            if not call.ok and call.error in BAD_RENDER_ERRORS:
                found.append(f"{call.method} refused: {call.error}")
        return found

    async def board_agrees(self) -> None:
        core, emu = self.runtime.core, self.emu

        async def same():
            tasks = await core.list_tasks()
            counts = Counter(column_of(t.state) for t in tasks)
            want = " · ".join(f"{counts[s]} {STATE_LABEL[s].lower()}" for s in STATE_ORDER if counts[s])
            pinned = emu.pinned(BOARD)
            return pinned and emu.message(BOARD, pinned[0]["ts"]).get("text") == f"Agent tasks: {want}"
        await emu.wait_for(same, timeout=15)

    async def stop(self) -> None:
        await self.runtime.close()
        await self.emu.__aexit__(None, None, None)


class Problems(logging.Handler):
    """Every record with a traceback, or at ERROR and above, from any logger."""

    def __init__(self):
        super().__init__(logging.WARNING)
        self.records: list[str] = []

    def emit(self, record: logging.LogRecord) -> None:
        if record.exc_info or record.levelno >= logging.ERROR:
            self.records.append(f"{record.name}: {record.getMessage()} {self.format(record)[-800:]}")


@pytest.fixture(scope="module")
def world(tmp_path_factory):
    w = World(tmp_path_factory.mktemp("fuzz"))
    w.thread.start()
    handler = Problems()
    logging.getLogger().addHandler(handler)
    w.log = handler
    w.run(w.start())
    yield w
    try:
        w.run(w.stop())
    finally:
        logging.getLogger().removeHandler(handler)
        w.loop.call_soon_threadsafe(w.loop.stop)
        w.thread.join(10)


# ---- mutations ---------------------------------------------------------------------------------

def _paths(obj, prefix=()):
    if isinstance(obj, dict):
        for key, value in obj.items():
            yield prefix + (key,)
            yield from _paths(value, prefix + (key,))
    elif isinstance(obj, list):
        for i, value in enumerate(obj):
            yield prefix + (i,)
            yield from _paths(value, prefix + (i,))


def _apply(payload: dict, path: tuple, op: str, value) -> None:
    target = payload
    for key in path[:-1]:
        try:
            target = target[key]
        except (KeyError, IndexError, TypeError):
            return   # an earlier mutation removed the way there
    last = path[-1]
    if not isinstance(target, (dict, list)) or (isinstance(target, list) and not isinstance(last, int)):
        return
    try:
        if op == "delete":
            del target[last]
        else:
            target[last] = value
    except (KeyError, IndexError, TypeError):
        pass


@st.composite
def hostile(draw, templates: list[tuple[str, dict]]):
    kind, template = draw(st.sampled_from(templates))
    payload = copy.deepcopy(template)
    paths = list(_paths(template))
    for _ in range(draw(st.integers(min_value=1, max_value=4))):
        path = draw(st.sampled_from(paths))
        op = draw(st.sampled_from(["set", "set", "delete"]))
        _apply(payload, path, op, draw(values) if op == "set" else None)
    return kind, payload


def _check(world: World, kind: str, payload: dict) -> None:
    ack, since = world.run(world.deliver(kind, payload))
    world.run(world.settle())
    assert ack.acked, f"not acked: {payload}"
    assert ack.latency < 3
    assert world.web_api_problems(since) == []
    assert world.log.records == [], world.log.records[:3]


# ---- the properties, one test per payload kind ----------------------------------------------------

@pytest.mark.parametrize("kind", ["slash_commands", "block_actions", "view_submission", "message", "shortcut"])
def test_hostile_payloads_are_acked_refused_or_handled_never_crash(world, kind):
    @FUZZ
    @given(st.data())
    def prop(data):
        delivery_kind, payload = data.draw(hostile(world.templates[kind]))
        _check(world, delivery_kind, payload)

    prop()
    world.run(world.board_agrees())
    assert world.log.records == []


def test_taskpin_still_works_after_the_fuzz(world):
    emu, core = world.emu, world.runtime.core
    before = len(world.run(core.list_tasks()))
    ack = world.run(emu.slash_command(OWNER, "/task", "After the storm"))
    assert ack.acked

    async def created():
        return len(await core.list_tasks()) == before + 1
    world.run(emu.wait_for(created, timeout=5))
    world.run(world.board_agrees())
    assert world.log.records == []
