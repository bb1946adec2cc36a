"""One PostgreSQL database, real `taskpin run --role ...` processes, the Slack emulator here:
the queue spread over workers, a worker killed with agents running and blocked, the board
writer killed, the same click delivered to two slack processes."""
from __future__ import annotations

import asyncio
import json
import os
import signal
import time

from bot.emulator.blockkit import iter_elements
from bot.ids import ActionId, make_action_id
from bot.threads import thread_marker
from orchestrator import Orchestrator, Settings, TaskState
from orchestrator.coordination import JournaledBus
from orchestrator.coordination.postgres import PostgresCoordinator

from .harness import BOARD, agent_processes

OWNER = "U_OWNER"
S = TaskState
MEASURED = {}     # figures for the report (takeover times), printed with -s


class Dispatcher:
    """A core in the test process on the same database, running no agents: creates and dispatches
    tasks as a slack process would (its events reach the board writer through the journal)."""

    def __init__(self, cluster):
        self.cluster = cluster

    async def __aenter__(self) -> Orchestrator:
        settings = Settings(_env_file=None, database_url=self.cluster.db_url, config=self.cluster.config,
                            worker_name="test-dispatcher", workspaces_dir=self.cluster.tmp / "worktrees",
                            log_dir=self.cluster.tmp / "logs-dispatcher")
        self.core = await Orchestrator.open(settings)
        self.coordinator = PostgresCoordinator("test-dispatcher", self.core.store, self.cluster.db_url)
        await self.coordinator.start()
        self.core.use_coordination(self.coordinator, runs_agents=False, bus=JournaledBus(self.coordinator))
        await self.core.start()
        return self.core

    async def __aexit__(self, *exc) -> None:
        await self.core.close()
        await self.coordinator.close()


async def wait_for(predicate, timeout: float, what: str, cluster, interval: float = 0.1):
    deadline = time.monotonic() + timeout
    while True:
        cluster.check_alive()
        value = predicate()
        if asyncio.iscoroutine(value):
            value = await value
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"{what}: not within {timeout}s\n{cluster.logs()}")
        await asyncio.sleep(interval)


async def started(cluster, *processes, timeout: float = 40) -> None:
    for p in processes:
        marker = f"taskpin worker {p.name} is running" if p.role == "worker" else f"taskpin is running as {p.name}"
        await wait_for(lambda p=p, marker=marker: marker in p.text(), timeout, f"{p.name} started", cluster)


async def dispatch_all(core: Orchestrator, n: int, agent: str) -> list[int]:
    ids = []
    for i in range(n):
        task = await core.create_task(prompt=f"task {i}", owner=OWNER, agent=agent)
        await core.dispatch(task.id, actor=OWNER)
        ids.append(task.id)
    return ids


def workers_of(transitions) -> list[str]:
    """The workers that started the task, from the audit log ("a session slot is free on w1")."""
    return [t.reason.rsplit(" on ", 1)[1] for t in transitions
            if t.to_state is S.IN_PROGRESS and t.from_state is S.QUEUED and " on " in t.reason]


async def test_ten_tasks_are_spread_over_two_workers_and_shown_by_one_slack_process(emu, cluster_factory):
    cluster = cluster_factory({"bot": [{"sleep": 1.0}, {"write_file": {"path": "out.txt", "content": "x\n"}},
                                       {"finish": "done"}]})
    emu.dispatcher.socket.spread = True
    slack = cluster.start("slack", "slack-1")
    w1 = cluster.start("worker", "w1", TASKPIN_MAX_CONCURRENT_SESSIONS="3")
    w2 = cluster.start("worker", "w2", TASKPIN_MAX_CONCURRENT_SESSIONS="3")
    await started(cluster, slack, w1, w2)
    async with Dispatcher(cluster) as core:
        ids = await dispatch_all(core, 10, "bot")
        running_on = set()

        async def all_reviewed():
            tasks = await core.list_tasks()
            running_on.update(t.worker for t in tasks if t.state is S.IN_PROGRESS)
            busy = max(sum(t.state is S.IN_PROGRESS and t.worker == w for t in tasks) for w in ("w1", "w2"))
            assert busy <= 3, cluster.logs()    # each worker keeps to its TASKPIN_MAX_CONCURRENT_SESSIONS
            return all(t.state is S.AWAITING_REVIEW for t in tasks)

        await wait_for(all_reviewed, 60, "every task in review", cluster)
        starts = {task_id: workers_of(await core.history(task_id)) for task_id in ids}
    assert all(len(w) == 1 for w in starts.values()), (starts, cluster.logs())   # each task started once
    assert {w[0] for w in starts.values()} == {"w1", "w2"}, starts      # by both workers
    assert running_on >= {"w1", "w2"}
    # The one slack process showed all of it: a thread per task, the board with ten in review.
    await wait_for(lambda: all(f"#{i}" in emu.text_of(emu.pinned(BOARD)[0]) for i in ids), 20, "board", cluster)
    # Slack's pace (about one post a second per channel) spreads the thread roots out.
    roots = await wait_for(lambda: (r := [m for m in emu.messages(BOARD) if "dispatched by" in emu.text_of(m)])
                           and len(r) >= 10 and r, 40, "a thread per task", cluster)
    assert len(roots) == 10
    assert len(emu.pinned(BOARD)) == 1
    assert "Traceback" not in cluster.logs()


QUESTION = "Which greeting?"
ASKER = [{"emit": {"type": "session", "id": "s-1"}},
         {"ask": {"id": "q1", "kind": "question", "prompt": QUESTION,
                  "options": [{"id": "hi", "label": "Hi"}, {"id": "hello", "label": "Hello"}]}},
         {"finish": "answered"}]
HANGER = {"steps": [{"sleep": 120}], "resume": False}
# Short leases keep the test short; TASKPIN_TEST_LEASE_TTL_S=15 measures the default.
FAST_LEASES = {"TASKPIN_LEASE_TTL_S": os.environ.get("TASKPIN_TEST_LEASE_TTL_S", "4")}


def thread_root(emu, task_id: int) -> dict | None:
    return next((m for m in emu.messages(BOARD) if m.get("metadata") == thread_marker(task_id)), None)


def questions_in(emu, root: dict) -> list[dict]:
    return [m for m in emu.thread(BOARD, root["ts"]) if QUESTION in emu.text_of(m)]


async def test_a_killed_worker_s_tasks_are_taken_over_resumed_or_failed_with_its_name(emu, cluster_factory):
    cluster = cluster_factory({"asker": ASKER, "hanger": HANGER})
    emu.dispatcher.socket.spread = True
    slack = cluster.start("slack", "slack-1", **FAST_LEASES)
    w1 = cluster.start("worker", "w1", **FAST_LEASES)
    await started(cluster, slack, w1)
    async with Dispatcher(cluster) as core:
        askers = await dispatch_all(core, 2, "asker")
        [hanger] = await dispatch_all(core, 1, "hanger")

        async def settled_on(worker: str, states) -> bool:
            tasks = {t.id: t for t in await core.list_tasks()}
            return all(tasks[i].state is states[i] and tasks[i].worker == worker for i in states)

        blocked_on_w1 = {askers[0]: S.BLOCKED, askers[1]: S.BLOCKED, hanger: S.IN_PROGRESS}
        await wait_for(lambda: settled_on("w1", blocked_on_w1), 30, "running and blocked on w1", cluster)
        await wait_for(lambda: all(len(agent_processes(i)) == 1 for i in (*askers, hanger)), 10, "agents", cluster)
        w2 = cluster.start("worker", "w2", **FAST_LEASES)
        await started(cluster, w2)

        cluster.kill9(w1)
        killed_at = time.time()
        # Within 30 s of the death (1.25 x the lease's TTL): the askers resume on w2 (and ask
        # again), the hanger fails.
        await wait_for(lambda: settled_on("w2", {askers[0]: S.BLOCKED, askers[1]: S.BLOCKED}), 30,
                       "askers resumed on w2", cluster)
        failed = await wait_for(lambda: _failed(core, hanger), 30, "hanger failed", cluster)
        assert failed.failure_reason == "worker w1 lost", failed.failure_reason
        takeovers = []
        for task_id in (*askers, hanger):
            takeovers += [t for t in await core.history(task_id) if "worker w1 lost" in t.reason]
        MEASURED["worker takeover after kill -9 (s)"] = [round(t.at.timestamp() - killed_at, 2) for t in takeovers]
        print("\nworker takeover after kill -9:", MEASURED["worker takeover after kill -9 (s)"])
        assert len(takeovers) == 3
        # No duplicate agent: one per resumed task (w1's are gone), none for the failed one.
        await wait_for(lambda: [len(agent_processes(i)) for i in (*askers, hanger)] == [1, 1, 0], 10,
                       "one agent per live task", cluster)
        # Nothing lost: the resumed agents' new questions reach the thread through the slack process,
        # and the owner's answer there reaches the agent on w2.
        for task_id in askers:
            root = await wait_for(lambda task_id=task_id: thread_root(emu, task_id), 30, "thread", cluster)
            await wait_for(lambda root=root: len(questions_in(emu, root)) == 2, 30, "the second question", cluster)
            await emu.user_message(OWNER, BOARD, "hello", thread_ts=root["ts"])
        await wait_for(lambda: _all_in(core, askers, S.AWAITING_REVIEW), 30, "answered on w2", cluster)
        assert "Traceback" not in cluster.logs()


async def _failed(core, task_id):
    task = await core.get_task(task_id)
    return task if task.state is S.FAILED else None


async def _all_in(core, ids, state) -> bool:
    return all(task.state is state for task in [await core.get_task(i) for i in ids])


def board_ts(emu) -> str | None:
    pinned = emu.pinned(BOARD)
    return pinned[0]["ts"] if pinned else None


def boards_posted(emu) -> list[dict]:
    """Every top-level message that is a board (whatever its pin state)."""
    return [m for m in emu.messages(BOARD) if any(b.get("block_id", "").startswith("board")
                                                  for b in m.get("blocks") or [])]


async def test_the_second_slack_process_edits_the_same_board_within_10s_of_the_writer_s_death(emu, cluster_factory):
    cluster = cluster_factory({"bot": [{"finish": "done"}]})
    emu.dispatcher.socket.spread = True
    first = cluster.start("slack", "slack-a")
    await started(cluster, first)
    await wait_for(lambda: board_ts(emu), 20, "the board", cluster)
    second = cluster.start("slack", "slack-b")
    await started(cluster, second)
    assert "another process edits it" in second.text()
    ts = board_ts(emu)
    async with Dispatcher(cluster) as core:
        before = await core.create_task(prompt="before the kill", owner=OWNER)
        await wait_for(lambda: f"#{before.id}" in emu.text_of(emu.message(BOARD, ts)), 10, "first card", cluster)
        cluster.kill9(first)
        killed_at = time.time()
        after = await core.create_task(prompt="after the kill", owner=OWNER)
        await wait_for(lambda: f"#{after.id}" in emu.text_of(emu.message(BOARD, ts)), 10,
                       "the same board edited by the survivor", cluster, interval=0.05)
        took = round(time.time() - killed_at, 2)
    MEASURED["board writer takeover after kill -9 (s)"] = took
    print("\nboard writer takeover after kill -9:", took)
    assert board_ts(emu) == ts and len(emu.pinned(BOARD)) == 1
    assert len(boards_posted(emu)) == 1, "no second board was ever posted"
    assert "took over the board" in second.text()


async def test_the_same_click_delivered_to_both_slack_processes_has_one_effect(emu, cluster_factory):
    cluster = cluster_factory({"bot": [{"finish": "done"}]})
    first = cluster.start("slack", "slack-a")
    await started(cluster, first)
    second = cluster.start("slack", "slack-b")
    await started(cluster, second)
    await wait_for(lambda: len(emu.dispatcher.socket.live) == 2, 20, "both connected", cluster)
    worker = cluster.start("worker", "w1")
    await started(cluster, worker)
    async with Dispatcher(cluster) as core:
        task = await core.create_task(prompt="click me once", owner=OWNER)
        action_id = make_action_id(ActionId.DISPATCH, task.id)
        board = await wait_for(lambda: next((m for m in emu.pinned(BOARD) if any(
            el.get("action_id") == action_id for _b, el in iter_elements(m.get("blocks") or []))), None), 20,
            "the Dispatch button", cluster)
        first_click = asyncio.create_task(emu.click_button(OWNER, BOARD, board["ts"], action_id, str(task.id),
                                                           connection=0))
        await wait_for(lambda: emu.deliveries and emu.deliveries[-1].kind == "block_actions", 5, "sent", cluster,
                       interval=0.001)
        same = emu.deliveries[-1]
        acks = await asyncio.gather(first_click, emu.deliver(same.type, same.payload, connection=1))
        assert all(a.acked for a in acks)
        await wait_for(lambda: _all_in(core, [task.id], S.AWAITING_REVIEW), 30, "the one run", cluster)
        dispatches = [t for t in await core.history(task.id) if t.from_state is S.BACKLOG]
    assert len(dispatches) == 1, dispatches
    await wait_for(lambda: thread_root(emu, task.id), 20, "its thread", cluster)
    assert len([m for m in emu.messages(BOARD) if "dispatched by" in emu.text_of(m)]) == 1
    assert not [e for e in emu.ws.ephemerals if "already" in json.dumps(e)], "the second click was refused aloud"
    assert ["dropped a redelivery" in p.text() for p in (first, second)].count(True) == 1


async def test_a_worker_frozen_past_its_lease_is_fenced_out_when_it_wakes(emu, cluster_factory):
    """SIGSTOP a worker (a long GC pause, a partition) until the other takes its task over; when
    it wakes, its run finds the agent gone and would fail the task: the fence refuses that write."""
    cluster = cluster_factory({"asker": ASKER})
    w1 = cluster.start("worker", "w1", **FAST_LEASES)
    w2 = cluster.start("worker", "w2", **FAST_LEASES)
    await started(cluster, w1, w2)
    async with Dispatcher(cluster) as core:
        [task_id] = await dispatch_all(core, 1, "asker")
        first = await wait_for(lambda: state_of(core, task_id, S.BLOCKED), 30, "blocked", cluster)
        frozen = cluster.by_name(first.worker)
        other = "w2" if first.worker == "w1" else "w1"
        frozen.popen.send_signal(signal.SIGSTOP)
        try:
            taken = await wait_for(lambda: _blocked_on(core, task_id, other), 30, "taken over", cluster)
        finally:
            frozen.popen.send_signal(signal.SIGCONT)
        await wait_for(lambda: "is not recorded here" in frozen.text() or "lost task:" in frozen.text(), 20,
                       "the woken worker notices", cluster)
        await asyncio.sleep(1)
        now = await core.get_task(task_id)
        assert (now.state, now.worker) == (S.BLOCKED, other), (now, cluster.logs())
        assert now.version == taken.version or not [t for t in await core.history(task_id)
                                                     if t.to_state is S.FAILED]
        await wait_for(lambda: len(agent_processes(task_id)) == 1, 10, "one agent", cluster)
    assert "Traceback" not in cluster.logs()


async def state_of(core, task_id, state):
    task = await core.get_task(task_id)
    return task if task.state is state else None


async def _blocked_on(core, task_id, worker):
    task = await core.get_task(task_id)
    return task if task.state is S.BLOCKED and task.worker == worker else None
