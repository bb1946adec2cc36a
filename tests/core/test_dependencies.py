"""Tasks that wait for others, in the core with real git and scripted agents: a dispatch before
the dependencies completed waits; the last completion queues it on the right branch; a failed
dependency leaves it waiting (told), until it is dispatched anyway or cancelled."""
from __future__ import annotations

import subprocess

import pytest

from orchestrator import DependencyFailed, InvalidInput, TaskState
from orchestrator.dependencies import find_cycle

from .helpers import Recorder, make_settings, scripted, started, wait_state, wait_until

S = TaskState
OWNER = "U1"
AGENTS = {"writer": scripted([{"write_file": {"path": "api.py", "content": "v2\n"}}, {"finish": "wrote api.py"}]),
          "reader": scripted([{"echo_env": ["NOTHING"]}, {"finish": "read"}])}


def git(cwd, *args) -> str:
    return subprocess.run(["git", *args], cwd=cwd, check=True, capture_output=True, text=True).stdout.strip()


def test_find_cycle_names_the_loop_through_the_start():
    assert find_cycle({1: [2], 2: [3], 3: [1]}, 1) == [1, 2, 3, 1]
    assert find_cycle({1: [2], 2: [3], 3: [2]}, 1) is None          # a loop elsewhere is not this task's
    assert find_cycle({1: [2, 3], 3: []}, 1) is None


async def test_unknown_ids_and_cycles_are_refused_with_the_field(tmp_path, git_repo, db_url):
    core = await started(make_settings(tmp_path, git_repo, AGENTS, db_url=db_url))
    try:
        with pytest.raises(InvalidInput, match="there is no task #99 to wait for") as refused:
            await core.create_task(prompt="fix", owner=OWNER, depends_on=[99])
        assert refused.value.field == "depends_on" and await core.list_tasks() == []
        first = await core.create_task(prompt="one", owner=OWNER)
        second = await core.create_task(prompt="two", owner=OWNER, depends_on=[first.id, first.id])
        assert second.depends_on == (first.id,)
        with pytest.raises(InvalidInput, match=rf"#{first.id} → #{second.id} → #{first.id} would wait") as loop:
            await core.dependencies.validate([second.id], task_id=first.id)
        assert loop.value.field == "depends_on"
    finally:
        await core.close()


async def test_the_last_completion_dispatches_the_dependent_on_the_kept_branch(tmp_path, git_repo):
    core = await started(make_settings(tmp_path, git_repo, AGENTS, on_approve="none"))
    try:
        api = await core.create_task(prompt="write the API", owner=OWNER, agent="writer")
        other = await core.create_task(prompt="something else", owner=OWNER, agent="reader")
        client = await core.create_task(prompt="use the API", owner=OWNER, agent="reader",
                                        depends_on=[api.id, other.id])
        waiting = await core.dispatch(client.id, actor=OWNER)
        assert waiting.state is S.WAITING
        assert (await core.history(client.id))[-1].reason == f"waits for #{api.id}, #{other.id}"

        await core.dispatch(api.id, actor=OWNER)
        await wait_state(core, api.id, S.AWAITING_REVIEW)
        await core.approve(api.id, actor=OWNER)
        assert (await core.get_task(client.id)).state is S.WAITING, "one dependency is still open"

        await core.dispatch(other.id, actor=OWNER)
        await wait_state(core, other.id, S.AWAITING_REVIEW)
        await core.approve(other.id, actor=OWNER)
        done = await wait_state(core, client.id, S.AWAITING_REVIEW)
        assert done.base_branch == api.branch, "started from the branch the API task left"
        assert (core.workspaces.path_for(client.id) / "api.py").read_text() == "v2\n"
        moves = [(h.from_state, h.to_state, h.actor) for h in await core.history(client.id)]
        assert moves[1:3] == [(S.BACKLOG, S.WAITING, OWNER), (S.WAITING, S.QUEUED, "taskpin")]
    finally:
        await core.close()


async def test_after_a_merge_the_dependent_starts_from_the_updated_base(tmp_path, git_repo):
    git(git_repo, "checkout", "-q", "--detach")   # taskpin never merges into a checked-out branch
    core = await started(make_settings(tmp_path, git_repo, AGENTS, on_approve="merge"))
    try:
        api = await core.create_task(prompt="write the API", owner=OWNER, agent="writer")
        client = await core.create_task(prompt="use it", owner=OWNER, agent="reader", depends_on=[api.id])
        await core.dispatch(client.id, actor=OWNER)
        await core.dispatch(api.id, actor=OWNER)
        await wait_state(core, api.id, S.AWAITING_REVIEW)
        await core.approve(api.id, actor=OWNER)
        done = await wait_state(core, client.id, S.AWAITING_REVIEW)
        assert done.base_branch == "main"
        assert git(git_repo, "show", "main:api.py") == "v2"
        assert (core.workspaces.path_for(client.id) / "api.py").read_text() == "v2\n"
    finally:
        await core.close()


async def test_a_failed_dependency_leaves_it_waiting_until_dispatched_anyway_or_cancelled(tmp_path, git_repo):
    core = await started(make_settings(tmp_path, git_repo, AGENTS))
    recorder = Recorder(core)
    try:
        api = await core.create_task(prompt="write the API", owner=OWNER, agent="writer")
        client = await core.create_task(prompt="use it", owner=OWNER, agent="reader", depends_on=[api.id])
        spare = await core.create_task(prompt="use it too", owner=OWNER, agent="reader", depends_on=[api.id])
        await core.dispatch(client.id, actor=OWNER)
        await core.dispatch(spare.id, actor=OWNER)
        await core.dispatch(api.id, actor=OWNER)
        await wait_state(core, api.id, S.AWAITING_REVIEW)
        await core.reject(api.id, actor=OWNER, reason="wrong approach")
        await wait_until(lambda: len(recorder.of(DependencyFailed)) == 2, what="both dependents told")
        assert {(e.task.id, e.dependency.id) for e in recorder.of(DependencyFailed)} == \
            {(client.id, api.id), (spare.id, api.id)}
        assert (await core.get_task(client.id)).state is S.WAITING
        assert "which this task waits for, failed: rejected by U1: wrong approach" in "\n".join(core.tail_log(client.id))

        await core.dispatch(client.id, actor=OWNER, anyway=True)
        done = await wait_state(core, client.id, S.AWAITING_REVIEW)
        assert done.base_branch == "main", "a rejected branch is no base"
        cancelled = await core.cancel(spare.id, actor=OWNER)
        assert cancelled.state is S.FAILED and cancelled.failure_reason == "cancelled"
    finally:
        await core.close()
