"""Cancel, approve, request changes, follow-ups and budgets from the slack process, for agents
that run in a worker process."""
from __future__ import annotations

import subprocess

from bot.emulator.blockkit import iter_elements
from bot.ids import ActionId, make_action_id
from orchestrator import TaskState

from .harness import BOARD, agent_processes
from .test_cluster import OWNER, Dispatcher, dispatch_all, started, thread_root, wait_for

S = TaskState
AGENTS = {
    "talker": [{"wait_message": True}, {"write_file": {"path": "talk.txt", "content": "heard you\n"}},
               {"finish": "wrote what it heard"}],
    "hanger": {"steps": [{"sleep": 120}], "resume": False},
    "spender": {"steps": [{"emit": {"type": "usage", "input_tokens": 10, "output_tokens": 10, "cost_usd": 2.5}},
                          {"sleep": 120}], "resume": False},
    "echo": {"steps": [{"echo_prompt": True}, {"finish": "done"}], "resume": False},
}


async def click(emu, cluster, action: ActionId, task_id: int) -> None:
    action_id = make_action_id(action, task_id)
    board = await wait_for(lambda: next((m for m in emu.pinned(BOARD) if any(
        el.get("action_id") == action_id for _b, el in iter_elements(m.get("blocks") or []))), None), 20,
        f"the {action.name} button of #{task_id}", cluster)
    await emu.click_button(OWNER, BOARD, board["ts"], action_id, str(task_id))


async def state_of(core, task_id: int, state: TaskState):
    task = await core.get_task(task_id)
    return task if task.state is state else None


async def test_decisions_taken_in_slack_reach_the_worker_running_the_agent(emu, cluster_factory, git_repo):
    subprocess.run(["git", "checkout", "-q", "-b", "dev"], cwd=git_repo, check=True)   # main is merged into
    cluster = cluster_factory(AGENTS, on_approve="merge")
    slack = cluster.start("slack", "slack-1", TASKPIN_MAX_COST_PER_TASK_USD="1.0")
    worker = cluster.start("worker", "w1", TASKPIN_MAX_COST_PER_TASK_USD="1.0")
    await started(cluster, slack, worker)
    async with Dispatcher(cluster) as core:
        [talker] = await dispatch_all(core, 1, "talker")
        [hanger] = await dispatch_all(core, 1, "hanger")
        [spender] = await dispatch_all(core, 1, "spender")
        [echo] = await dispatch_all(core, 1, "echo")
        # Budget: enforced by the worker; the slack process shows the failure.
        failed = await wait_for(lambda: state_of(core, spender, S.FAILED), 30, "over budget", cluster)
        assert failed.failure_reason.startswith("budget exceeded"), failed.failure_reason
        # Cancel on the card (slack process) stops the agent in the worker.
        await wait_for(lambda: agent_processes(hanger), 20, "the hanger runs", cluster)
        await click(emu, cluster, ActionId.CANCEL, hanger)
        cancelled = await wait_for(lambda: state_of(core, hanger, S.FAILED), 30, "cancelled", cluster)
        assert cancelled.failure_reason == "cancelled"
        await wait_for(lambda: not agent_processes(hanger), 10, "its agent stopped", cluster)
        # A thread reply with no question open is a follow-up, carried to the agent in the worker.
        root = await wait_for(lambda: thread_root(emu, talker), 30, "the talker's thread", cluster)
        await wait_for(lambda: agent_processes(talker), 20, "the talker runs", cluster)
        await emu.user_message(OWNER, BOARD, "please write it down", thread_ts=root["ts"])
        await wait_for(lambda: state_of(core, talker, S.AWAITING_REVIEW), 30, "the talker finished", cluster)
        # Approve on the card: the slack process has no repository; the worker merges.
        await click(emu, cluster, ActionId.APPROVE, talker)
        done = await wait_for(lambda: state_of(core, talker, S.COMPLETED), 30, "approved", cluster)
        assert (await core.history(talker))[-1].reason == "approved; merged into main"
        merged = subprocess.run(["git", "show", "main:talk.txt"], cwd=git_repo, capture_output=True, text=True)
        assert merged.stdout == "heard you\n", merged.stderr
        assert done.id == talker
        # Request changes from another process: the worker runs the agent again with the feedback.
        await wait_for(lambda: state_of(core, echo, S.AWAITING_REVIEW), 30, "echo finished", cluster)
        await core.request_changes(echo, "use tabs", actor=OWNER)
        worker_log = cluster.tmp / "logs" / f"task-{echo}.log"     # written by the worker
        await wait_for(lambda: "use tabs" in worker_log.read_text(), 30, "the feedback reached the agent", cluster)
        await wait_for(lambda: state_of(core, echo, S.AWAITING_REVIEW), 30, "echo ran again", cluster)
    assert "Traceback" not in cluster.logs()
